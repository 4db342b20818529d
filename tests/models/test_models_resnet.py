"""ResNets: shapes for every depth, the published parameter counts, and the residual-block protocol."""

import pytest
import torch
from torch import nn

from template import inits, models
from template.errors import UsageError
from template.models.resnet import BasicBlock, FixupBlock

DEPTHS = (18, 20, 32, 56, 110)


def blocks(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if hasattr(m, "branch")]


def cifar_resnet_params(depth: int, norm: str, num_classes: int = 10) -> int:
    """Counted by hand from He et al. 2016, section 4.2: a 3x3 stem, 3 stages of n two-conv blocks."""
    n, widths = (depth - 2) // 6, (16, 32, 64)
    per_channel = 2 if norm == "batch" else 1  # BN's weight and bias, or the conv's own bias
    total = 3 * 9 * 16 + per_channel * 16  # stem
    previous = 16
    for width in widths:
        total += 9 * previous * width + (2 * n - 1) * 9 * width * width  # option-A shortcuts are free
        total += 2 * n * per_channel * width
        previous = width
    if norm == "none":
        total += 5 * 3 * n  # Fixup's four scalar biases and one multiplier per block
    return total + 64 * num_classes + num_classes


@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("depth", DEPTHS)
def test_output_shape_for_every_depth(depth, norm):
    x = torch.randn(2, 3, 32, 32)
    for classes in (10, 100):
        model = models.build("resnet", depth=depth, norm=norm, num_classes=classes)
        assert model(x).shape == (2, classes)


def test_grayscale_input():
    assert models.build("resnet", depth=20, in_channels=1)(torch.randn(2, 1, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("depth", [20, 56])
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_parameter_counts_match_the_formula(depth, norm):
    model = models.build("resnet", depth=depth, norm=norm)
    assert sum(p.numel() for p in model.parameters()) == cifar_resnet_params(depth, norm)


def test_batch_norm_versions_have_the_published_sizes():
    # He et al. 2016, Table 6: ResNet-20 0.27M, ResNet-56 0.85M parameters.
    built = [models.build("resnet", depth=d, norm="batch") for d in (20, 56)]
    sizes = [sum(p.numel() for p in model.parameters()) for model in built]
    assert [round(s / 1e6, 2) for s in sizes] == [0.27, 0.85]


def test_resnet18_at_full_width_is_the_usual_cifar_resnet18():
    model = models.build("resnet", depth=18, width=64, norm="batch")
    assert sum(p.numel() for p in model.parameters()) == 11_173_962  # 11.2M, the common CIFAR ResNet-18
    assert [len(model.get_submodule(f"stage{s}")) for s in (1, 2, 3, 4)] == [2, 2, 2, 2]
    assert model.get_submodule("stage4.block0.conv1").out_channels == 512


def test_width_scales_the_channels():
    assert models.build("resnet", depth=20, width=32).get_submodule("stage3.block0.conv1").out_channels == 128
    assert models.build("resnet", depth=18, width=16).get_submodule("stage4.block0.conv1").out_channels == 128


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_every_block_speaks_the_residual_protocol(depth, norm):
    model = models.build("resnet", depth=depth, norm=norm)
    found = blocks(model)
    assert len(found) == (8 if depth == 18 else (depth - 2) // 2)
    for block in found:
        assert isinstance(block, BasicBlock if norm == "batch" else FixupBlock)
        branch = block.branch()
        assert branch == [block.conv1, block.conv2]
        assert all(isinstance(layer, nn.Conv2d) for layer in branch)
        if norm == "batch":
            assert block.bn_last is block.bn2 and isinstance(block.bn_last, nn.BatchNorm2d)
            assert "bn_last" not in dict(block.named_modules())  # an alias, not a second registration
        else:
            assert not hasattr(block, "bn_last")
            scalars = dict(block.named_parameters(recurse=False))
            assert sorted(scalars) == ["bias1a", "bias1b", "bias2a", "bias2b", "scale"]
            assert all(p.numel() == 1 for p in scalars.values())
            assert block.scale.item() == 1 and all(scalars[k].item() == 0 for k in scalars if k != "scale")


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_silencing_the_branch_leaves_the_shortcut(norm):
    """What fixup and zero_init_residual rely on: a zeroed last branch layer makes the block act(shortcut)."""
    model = models.build("resnet", depth=20, norm=norm).eval()
    for block in blocks(model):
        last = block.bn_last if norm == "batch" else block.branch()[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        x = torch.randn(2, block.conv1.in_channels, 16, 16)
        assert torch.equal(block(x), block.act2(block.shortcut(x)))


@pytest.mark.parametrize("depth", [18, 20])
def test_the_residual_schemes_find_every_block(depth):
    """The real registry against the real blocks: fixup without norm, zero_init_residual with batch norm."""
    fixup = models.build("resnet", depth=depth, norm="none")
    set_by = inits.initialize(fixup, "fixup").set_by
    for name, block in fixup.named_modules():
        if hasattr(block, "branch"):
            assert not block.conv2.weight.any() and block.conv1.weight.any()
            assert set_by[f"{name}.scale"] == "fixup (multiplier 1)"
            assert set_by[f"{name}.bias2b"] == "fixup (scalar bias 0)"
    assert not fixup.fc.weight.any()
    batch = models.build("resnet", depth=depth, norm="batch")
    inits.initialize(batch, "zero_init_residual")
    assert all(not block.bn2.weight.any() and block.bn1.weight.all() for block in blocks(batch))


@pytest.mark.parametrize("depth", DEPTHS)
def test_norm_none_has_no_batch_norm_and_biased_convs(depth):
    model = models.build("resnet", depth=depth, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("depth", DEPTHS)
def test_norm_batch_has_batch_norm_after_every_conv(depth):
    model = models.build("resnet", depth=depth, norm="batch")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == len(convs)
    assert all(m.bias is None for m in convs)


def test_layer_names_are_readable():
    names = dict(models.build("resnet", depth=20).named_modules())
    assert {"stem.conv", "stage1.block0.conv1", "stage3.block2.conv2", "fc"} <= names.keys()
    names = dict(models.build("resnet", depth=18).named_modules())
    assert {"stage2.block0.shortcut.conv", "stage4.block1.conv2"} <= names.keys()


def test_activation_is_configurable():
    model = models.build("resnet", depth=20, activation="leaky_relu", negative_slope=0.2)
    acts = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 1 + 2 * 9 and all(a.negative_slope == 0.2 for a in acts)
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())


@pytest.mark.parametrize("depth", [0, 19, 21, 44])
def test_bad_depth_is_refused_in_one_line(depth):
    with pytest.raises(UsageError) as caught:
        models.build("resnet", depth=depth)
    valid = "18, 20, 32, 56, 110"
    assert str(caught.value) == f"model.depth={depth} is not a resnet depth; choose one of: {valid}"
