"""Model FLOP utilisation (MFU): the FLOPs a training step must do, times steps per second, over the
device's peak.

FLOPs are counted with torch's `FlopCounterMode` over a forward and backward pass: matrix multiplies and
convolutions only, as in every MFU figure (PaLM, nanoGPT). Peaks: dense bf16, NVIDIA's data sheets; a
device not in the table gets no MFU unless `bench.peak_tflops` is set.
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


def flops_per_image(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], images: int = 2) -> float:
    """Training FLOPs per image, counted on the CPU on `images` of `batch`: the count is linear in the
    batch and does not depend on the device or the precision. Gradients are cleared after."""
    inputs, targets = (tensor[:images].cpu() for tensor in batch)
    model = model.cpu()
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(inputs), targets).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(inputs)


def peak_tflops(device_name: str, override: float = 0.0) -> float | None:
    """The device's dense bf16 peak in TFLOP/s: `override` when positive, else the table's, else None."""
    if override > 0:
        return override
    for name, peak in PEAK_BF16_TFLOPS:
        if re.search(rf"\b{re.escape(name)}\b", device_name):
            return peak
    return None
