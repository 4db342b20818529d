"""He et al. 2016's residual networks, in their CIFAR form and as the common CIFAR ResNet-18.

Two families, picked by `depth`:
- depth = 6n + 2 (20, 32, 56, 110): the paper's CIFAR-10 networks (section 4.2). A 3×3 stem, then
  three stages of n basic blocks with 16, 32, 64 channels on 32×32, 16×16, 8×8 maps, then global
  average pooling and one linear classifier. Shortcuts are the paper's option A, parameter-free:
  identity, or at a stage change a stride-2 subsample padded with zero channels. With batch norm these
  are the published models (ResNet-20: 0.27M parameters, ResNet-56: 0.85M).
- depth = 18: the ImageNet ResNet-18's four stages of two basic blocks (64, 128, 256, 512 channels)
  with a 3×3 stride-1 stem and no max pool, so that 32×32 inputs keep enough resolution; stage changes
  use option B, a strided 1×1 projection (with batch norm when the blocks have it).
`width` is the first stage's channel count: channels scale by width/16 for the CIFAR family (width=16 is
the paper's) and by width/64 for ResNet-18 (width=64 is the usual one; the config's default 16 gives a
quarter-width ResNet-18).

`norm=batch` gives the usual conv-BN-activation blocks (`BasicBlock`). `norm=none` gives `FixupBlock`,
the normalisation-free block of Zhang et al. 2019 ("Fixup Initialization"): convolutions keep their
biases, and the block carries Fixup's scalar biases (before each convolution and each activation, zero)
and scalar multiplier (one). At those values they change nothing, so every other scheme sees a plain
residual net; `fixup` rescales the branch so the net trains without normalisation.

Both blocks speak the residual-block protocol of `template/inits/residual.py`, which the `fixup` and
`zero_init_residual` schemes use: `branch()` lists the residual branch's weight layers in forward order,
`bn_last` is the branch's last batch norm (BasicBlock only), and Fixup's scalars are parameters of the
block itself named `bias*` and `scale` (FixupBlock only). The classifier `fc` is registered last, which
is how `fixup` finds the layer it zeroes.

Any input channels and size: the stride-2 stage changes round up (a 28×28 image gives 14, 7, 4), and
option A's subsampling `[::2]` keeps the same ceil(H/2) rows.

Layers are named `stem.conv`, `stage2.block0.conv1`, ..., `fc`, which become W&B keys such as
`act_var/stage2.block0.conv1`.
"""

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from template.errors import UsageError
from template.models import activations

CIFAR_DEPTHS = (20, 32, 56, 110)  # 6n + 2 with n = 3, 5, 9, 18
RESNET18_BLOCKS = (2, 2, 2, 2)


def depths() -> list[int]:
    return sorted((18, *CIFAR_DEPTHS))


class PadShortcut(nn.Module):
    """Option A: subsample by the stride and append zero channels; no parameters (He et al. 2016)."""

    def __init__(self, stride: int, extra_channels: int):
        super().__init__()
        self.stride, self.extra_channels = stride, extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.extra_channels))


def projection(in_channels: int, out_channels: int, stride: int, norm: str) -> nn.Sequential:
    """Option B: a strided 1×1 convolution, followed by batch norm when the blocks use it."""
    layers = OrderedDict(conv=nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=norm == "none"))
    if norm == "batch":
        layers["bn"] = nn.BatchNorm2d(out_channels)
    return nn.Sequential(layers)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)


class BasicBlock(nn.Module):
    """conv-BN-act-conv-BN, plus the shortcut, then act (He et al. 2016, Fig. 2)."""

    def __init__(self, in_channels, out_channels, stride, shortcut, activation, negative_slope):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = activations.make(activation, negative_slope)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = shortcut
        self.act2 = activations.make(activation, negative_slope)

    def branch(self) -> list[nn.Module]:
        return [self.conv1, self.conv2]

    @property
    def bn_last(self) -> nn.BatchNorm2d:
        """Zeroing its weight makes the block start as the identity (Goyal et al. 2017)."""
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + self.shortcut(x))


class FixupBlock(nn.Module):
    """conv-act-conv with biases, plus the shortcut, then act; with Fixup's scalars (Zhang et al. 2019)."""

    def __init__(self, in_channels, out_channels, stride, shortcut, activation, negative_slope):
        super().__init__()
        self.bias1a = nn.Parameter(torch.zeros(1))
        self.conv1 = conv3x3(in_channels, out_channels, stride, bias=True)
        self.bias1b = nn.Parameter(torch.zeros(1))
        self.act1 = activations.make(activation, negative_slope)
        self.bias2a = nn.Parameter(torch.zeros(1))
        self.conv2 = conv3x3(out_channels, out_channels, bias=True)
        self.scale = nn.Parameter(torch.ones(1))
        self.bias2b = nn.Parameter(torch.zeros(1))
        self.shortcut = shortcut
        self.act2 = activations.make(activation, negative_slope)

    def branch(self) -> list[nn.Module]:
        return [self.conv1, self.conv2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.conv1(x + self.bias1a) + self.bias1b)
        out = self.conv2(out + self.bias2a) * self.scale + self.bias2b
        return self.act2(out + self.shortcut(x))


class ResNet(nn.Sequential):
    def __init__(
        self,
        depth: int = 20,
        width: int = 16,
        num_classes: int = 10,
        activation: str = "relu",
        negative_slope: float = 0.01,
        norm: str = "none",
        in_channels: int = 3,
    ):
        if depth not in depths():
            valid = ", ".join(str(d) for d in depths())
            raise UsageError(f"model.depth={depth} is not a resnet depth; choose one of: {valid}")
        if depth == 18:
            blocks, stage_widths = RESNET18_BLOCKS, [c * width // 64 for c in (64, 128, 256, 512)]
        else:
            blocks, stage_widths = ((depth - 2) // 6,) * 3, [c * width // 16 for c in (16, 32, 64)]
        block = BasicBlock if norm == "batch" else FixupBlock
        stem = OrderedDict(conv=conv3x3(in_channels, stage_widths[0], bias=norm == "none"))
        if norm == "batch":
            stem["bn"] = nn.BatchNorm2d(stage_widths[0])
        stem["act"] = activations.make(activation, negative_slope)
        layers: OrderedDict[str, nn.Module] = OrderedDict(stem=nn.Sequential(stem))
        channels = stage_widths[0]
        for stage, (count, out_channels) in enumerate(zip(blocks, stage_widths, strict=True), start=1):
            stage_blocks: OrderedDict[str, nn.Module] = OrderedDict()
            for index in range(count):
                stride = 2 if stage > 1 and index == 0 else 1
                if stride == 1 and channels == out_channels:
                    shortcut = nn.Identity()
                elif depth == 18:
                    shortcut = projection(channels, out_channels, stride, norm)
                else:
                    shortcut = PadShortcut(stride, out_channels - channels)
                stage_blocks[f"block{index}"] = block(
                    channels, out_channels, stride, shortcut, activation, negative_slope
                )
                channels = out_channels
            layers[f"stage{stage}"] = nn.Sequential(stage_blocks)
        layers["gap"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(channels, num_classes)
        super().__init__(layers)
