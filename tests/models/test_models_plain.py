"""He et al.'s plain net as the experiment configs describe it: `depth` weight layers spread over three
stages of width w, 2w, 4w, square 3×3 convs (fan 9c) with max pooling between stages, no batch norm
unless asked."""

import pytest
import torch
from torch import nn

from template import models
from template.models.plain import convs_per_stage


@pytest.mark.parametrize(
    ("depth", "stages"),
    [(22, [7, 7, 7]), (30, [10, 10, 9]), (24, [8, 8, 7]), (11, [4, 3, 3]), (2, [1, 0, 0])],
)
def test_depth_counts_weight_layers_spread_over_three_stages(depth, stages):
    assert convs_per_stage(depth) == stages
    net = models.build("plain", depth=depth, width=8)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == depth and len(linears) == 1
    widths = [conv.out_channels for conv in convs]
    assert widths == [8] * stages[0] + [16] * stages[1] + [32] * stages[2]
    assert all(
        conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1) for conv in convs
    )


def test_layers_are_named_for_the_monitor_and_the_output_has_one_logit_per_class():
    net = models.build("plain", depth=5, width=4, num_classes=7)
    names = [name for name, _ in net.named_children()]
    assert names == ["conv1", "act1", "conv2", "act2", "pool1", "conv3", "act3", "pool2", "conv4", "act4"] + [
        "gap",
        "flatten",
        "fc",
    ]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_batch_norm_follows_every_conv_which_then_has_no_bias():
    net = models.build("plain", depth=5, width=4, norm="batch")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(conv.bias is None for conv in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == len(convs) == 4
    assert all(
        conv.bias is not None
        for conv in models.build("plain", depth=5).modules()
        if isinstance(conv, nn.Conv2d)
    )
