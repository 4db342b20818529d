"""Model FLOP utilisation (MFU): the FLOPs a training step must do, times steps per second, over the
device's peak.

FLOPs are counted, not estimated, with `torch.utils.flop_counter.FlopCounterMode` over one forward and
backward pass; like every MFU figure (PaLM, nanoGPT) it counts matrix multiplies and convolutions only,
so normalisation and activations are free and a faster kernel for them cannot inflate the number.
Peaks are the dense (no sparsity) bf16 tensor-core figures of NVIDIA's data sheets; a device missing
from the table gets no MFU unless the bench is given `peak_tflops=`.
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

# Dense bf16 TFLOP/s, most specific name first; matched as whole words of torch.cuda.get_device_name().
PEAK_BF16_TFLOPS = (
    ("B200", 2250.0),
    ("H200 NVL", 835.0),
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)


def train_step_flops(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> int:
    """FLOPs of one forward and backward pass of `model` on this batch (gradients are cleared after)."""
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(inputs), targets).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def flops_per_image(model: nn.Module, num_classes: int, image_shape=(3, 32, 32), batch: int = 2) -> float:
    """Training FLOPs per image, counted on the CPU on a small batch: the count is linear in the batch
    and does not depend on the device or the precision."""
    inputs = torch.randn(batch, *image_shape)
    targets = torch.randint(num_classes, (batch,))
    return train_step_flops(model.cpu(), inputs, targets) / batch


def peak_tflops(device_name: str, override: float = 0.0) -> float | None:
    """The device's dense bf16 peak in TFLOP/s: `override` when positive, else the table's, else None."""
    if override > 0:
        return override
    for name, peak in PEAK_BF16_TFLOPS:
        if re.search(rf"\b{re.escape(name)}\b", device_name):
            return peak
    return None


def mfu(flops_per_image: float, images_per_s: float, peak: float | None) -> float | None:
    """Achieved FLOP/s over peak FLOP/s, as a fraction; None when the peak is unknown."""
    return None if peak is None else flops_per_image * images_per_s / (peak * 1e12)
