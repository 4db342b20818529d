"""The vanilla CNN: a stride-2 stem to 8×8, then square convs of one width, no normalisation, no skips."""

import pytest
import torch
from torch import nn

from template import models
from template.errors import UsageError


def test_depth_counts_weight_layers_and_every_conv_after_the_stem_is_square():
    net = models.build("vanilla", depth=10, width=8, num_classes=7, activation="tanh", in_channels=3)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == 10 and [c.stride for c in convs[:3]] == [(2, 2), (2, 2), (1, 1)]
    shapes = []
    for conv in convs[2:]:
        conv.register_forward_hook(lambda m, a, out: shapes.append(tuple(out.shape[1:])))
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    assert set(shapes) == {(8, 8, 8)} and all(isinstance(m, nn.Tanh) for m in net if isinstance(m, nn.Tanh))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"depth": 3}, "model.depth=3 is too shallow for the vanilla net: it needs at least 4"),
        (
            {"depth": 8, "norm": "batch"},
            "model.norm='batch': the vanilla net has no normalisation; choose: none",
        ),
    ],
)
def test_refusals_name_the_value_and_the_bound(options, message):
    with pytest.raises(UsageError, match=f"^{message}"):
        models.build("vanilla", **options)
