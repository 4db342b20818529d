"""Fixup and zero-init-residual on a small ResNet that implements the residual-block protocol of
template/inits/residual.py: `branch()`, optional `bn_last`, scalar `bias*`/`scale*` parameters."""

import math

import pytest
import torch
from scipy import stats
from torch import nn
from torch.nn import functional as F

from template import inits
from template.errors import UsageError


class Block(nn.Module):
    """A basic block, Fixup-style (scalar biases and a multiplier) or with BatchNorm."""

    def __init__(self, c_in, c_out, stride=1, norm=False):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride > 1 or c_in != c_out else None
        if norm:
            self.bn1, self.bn_last = nn.BatchNorm2d(c_out), nn.BatchNorm2d(c_out)
        else:
            self.bias1a, self.bias1b, self.bias2a, self.bias2b = (
                nn.Parameter(torch.randn(1)) for _ in range(4)
            )
            self.scale = nn.Parameter(torch.randn(1))

    def branch(self):
        return [self.conv1, self.conv2]

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        if hasattr(self, "bn_last"):
            out = self.bn_last(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        else:
            out = F.relu(self.conv1(x + self.bias1a) + self.bias1b)
            out = self.conv2(out + self.bias2a) * self.scale + self.bias2b
        return F.relu(out + skip)


class ResNet(nn.Module):
    def __init__(self, norm=False, width=32):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        stages = [(width, width, 1), (width, width, 1), (width, 2 * width, 2), (2 * width, 2 * width, 1)]
        self.blocks = nn.Sequential(*[Block(c_in, c_out, s, norm) for c_in, c_out, s in stages])
        self.fc = nn.Linear(2 * width, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.stem(x)))
        return self.fc(x.mean((2, 3)))


def test_fixup_zeroes_branch_ends_and_classifier_and_scales_the_rest():
    torch.manual_seed(0)
    model = ResNet(width=72)  # wide enough for 10⁴ weights outside the branches too
    report = inits.initialize(model, "fixup")
    blocks = list(model.blocks)
    for block in blocks:
        assert (block.conv2.weight == 0).all()
        assert all(getattr(block, f"bias{n}").item() == 0 for n in ("1a", "1b", "2a", "2b"))
        assert block.scale.item() == 1
    assert (model.fc.weight == 0).all() and (model.fc.bias == 0).all()
    assert report.untouched == []
    assert report.set_by["blocks.0.conv1.weight"] == "fixup (kaiming_normal ×L^(-1/(2m-2)) = ×0.5)"
    assert report.set_by["fc.weight"] == "fixup (zero: classifier)"

    # Branch layers: N(0, √(2/fan_out)·L^(-1/(2m-2))), L = 4 blocks, m = 2 -> × 4^(-1/2) = ½.
    # Other layers: N(0, √(2/fan_out)). Standardise each by its own σ and pool: ≥ 10⁴ samples.
    def standardised(conv, factor):
        fan_out = conv.out_channels * math.prod(conv.kernel_size)
        return (conv.weight.detach().flatten() / (math.sqrt(2 / fan_out) * factor)).double()

    branch = torch.cat([standardised(b.conv1, 0.5) for b in blocks])
    assert branch.numel() >= 10_000 and stats.kstest(branch.numpy(), "norm").pvalue > 1e-4
    others = torch.cat([standardised(model.stem, 1.0), standardised(blocks[2].shortcut, 1.0)])
    assert others.numel() >= 10_000 and stats.kstest(others.numpy(), "norm").pvalue > 1e-4
    assert (model.stem.bias == 0).all()


def test_fixup_blocks_start_as_the_identity():
    torch.manual_seed(0)
    model = ResNet()
    inits.initialize(model, "fixup")
    x = torch.rand(2, 32, 8, 8)  # non-negative, as after a ReLU
    assert torch.equal(model.blocks[0](x), x)


def test_fixup_is_seeded():
    def state(seed):
        torch.manual_seed(seed)
        model = ResNet()
        torch.manual_seed(seed)
        inits.initialize(model, "fixup")
        return model.state_dict()

    a, b = state(0), state(0)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fixup_refuses_a_plain_net_and_a_one_layer_branch():
    plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 10))
    with pytest.raises(UsageError) as error:
        inits.initialize(plain, "fixup")
    assert (
        str(error.value) == "fixup needs a residual network (blocks with a residual branch); model has none"
    )

    model = ResNet()
    model.blocks[1].branch = lambda: [model.blocks[1].conv1]
    with pytest.raises(UsageError) as error:
        inits.initialize(model, "fixup")
    assert (
        str(error.value) == "fixup needs at least 2 weight layers per residual branch; block 'blocks.1' has 1"
    )


def test_zero_init_residual_zeroes_the_last_bn_gamma_and_nothing_else():
    torch.manual_seed(0)
    model = ResNet(norm=True)
    report = inits.initialize(model, "zero_init_residual")
    for i, block in enumerate(model.blocks):
        assert (block.bn_last.weight == 0).all()
        assert report.set_by[f"blocks.{i}.bn_last.weight"] == "zero_init_residual (last BN γ = 0)"
        assert (block.bn1.weight == 1).all()
        assert {f"blocks.{i}.bn1.weight", f"blocks.{i}.bn1.bias", f"blocks.{i}.bn_last.bias"} <= set(
            report.untouched
        )
    assert (
        report.set_by["fc.weight"] == "pytorch_default"
        and report.set_by["fc.bias"] == "pytorch_default (bias)"
    )
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]  # N(0, √(2/fan_out)), pooled
    standardised = torch.cat(
        [
            c.weight.detach().flatten().double() / math.sqrt(2 / (c.out_channels * 9))
            for c in convs
            if c.kernel_size == (3, 3)
        ]
    )
    assert standardised.numel() >= 10_000 and stats.kstest(standardised.numpy(), "norm").pvalue > 1e-4


def test_zero_init_residual_needs_bn_last():
    with pytest.raises(UsageError) as error:
        inits.initialize(ResNet(norm=False), "zero_init_residual")
    assert str(error.value) == (
        "zero_init_residual needs every residual block to have bn_last (an affine BatchNorm, "
        "the last of its branch); block 'blocks.0' has none"
    )
