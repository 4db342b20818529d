"""VGG: the paper's four layouts on 32x32 inputs, with and without batch norm."""

import pytest
import torch
from torch import nn

from template import models
from template.errors import UsageError

CONVS = {11: 8, 13: 10, 16: 13, 19: 16}  # Simonyan & Zisserman 2015, Table 1: depth minus three FC layers


def convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("depth", sorted(CONVS))
def test_output_shape_and_layout_for_every_depth(depth, norm):
    x = torch.randn(2, 3, 32, 32)
    for classes in (10, 100):
        model = models.build("vgg", depth=depth, norm=norm, num_classes=classes)
        assert model(x).shape == (2, classes)
    assert len(convs(model)) == CONVS[depth]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 5
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 1


def test_grayscale_input():
    assert models.build("vgg", depth=11, in_channels=1)(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_width_64_is_the_paper_and_width_scales_channels():
    paper = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]  # configuration D
    assert [c.out_channels for c in convs(models.build("vgg", depth=16, width=64))] == paper
    assert [c.out_channels for c in convs(models.build("vgg", depth=16, width=16))] == [p // 4 for p in paper]


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_parameter_count_matches_the_formula(norm):
    model = models.build("vgg", depth=16, width=64, norm=norm)
    paper = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    per_channel = 2 if norm == "batch" else 1  # BN's weight and bias, or the conv's own bias
    expected = sum(9 * cin * cout + per_channel * cout for cin, cout in zip([3, *paper], paper, strict=False))
    expected += 512 * 10 + 10
    assert sum(p.numel() for p in model.parameters()) == expected  # 14.7M with batch norm


@pytest.mark.parametrize("depth", sorted(CONVS))
def test_norm_selects_batch_norm(depth):
    plain = models.build("vgg", depth=depth, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert all(c.bias is not None for c in convs(plain))
    bn = models.build("vgg", depth=depth, norm="batch")
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.modules()) == CONVS[depth]
    assert all(c.bias is None for c in convs(bn))


def test_layer_names_are_readable():
    names = dict(models.build("vgg", depth=16, norm="batch").named_modules())
    assert {"stage1.conv1", "stage1.bn1", "stage3.conv3", "stage5.pool", "fc"} <= names.keys()


def test_activation_is_configurable():
    model = models.build("vgg", depth=11, activation="gelu")
    assert sum(isinstance(m, nn.GELU) for m in model.modules()) == 8
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())


@pytest.mark.parametrize("depth", [0, 12, 18])
def test_bad_depth_is_refused_in_one_line(depth):
    with pytest.raises(UsageError) as caught:
        models.build("vgg", depth=depth)
    assert str(caught.value) == f"model.depth={depth} is not a vgg depth; choose one of: 11, 13, 16, 19"
