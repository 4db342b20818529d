"""The MFU arithmetic, which only runs on a GPU, checked here on the CPU: FLOP counts of layers whose
cost is known by hand, the peak table's name matching, and the ratio itself."""

import pytest
import torch
from torch import nn

from template import models
from template.bench import flops


def test_linear_layer_costs_forward_plus_weight_gradient():
    layer = nn.Linear(8, 4, bias=False)
    inputs, batch = torch.randn(2, 8), 2
    # forward 2·in·out per image; backward: the weight gradient only (the input needs none), the same again
    assert flops.flops_per_image(layer, (inputs, torch.tensor([0, 3])), images=batch) == 2 * (2 * 8 * 4)
    assert layer.weight.grad is None  # cleared after counting


def test_flops_per_image_does_not_depend_on_the_batch():
    model = models.build("plain", depth=4, width=4)
    batch = (torch.randn(4, 3, 32, 32), torch.randint(10, (4,)))
    one, four = flops.flops_per_image(model, batch, images=1), flops.flops_per_image(model, batch, images=4)
    assert one == four > 0


def test_resnet18_costs_about_three_forward_passes():
    """ResNet-18 on 32x32 is 0.56 GMAC forward; training is ~3x the forward FLOPs, less the first
    convolution's input gradient."""
    model = models.build("resnet", depth=18, width=64, norm="batch")
    batch = (torch.randn(2, 3, 32, 32), torch.randint(10, (2,)))
    assert flops.flops_per_image(model, batch) == pytest.approx(3.33e9, rel=0.01)


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L40S", 362.0),
        ("NVIDIA L4", 121.0),
        ("NVIDIA A10", 125.0),
        ("NVIDIA A10G", None),  # not a whole-word match for A10: unknown rather than wrong
        ("Tesla V100-SXM2-16GB", None),  # no bf16
    ],
)
def test_peak_is_looked_up_by_whole_words_of_the_device_name(name, peak):
    assert flops.peak_tflops(name) == peak


def test_override_replaces_the_table():
    assert flops.peak_tflops("NVIDIA H100 80GB HBM3", override=500.0) == 500.0
    assert flops.peak_tflops("Some Future GPU", override=100.0) == 100.0
