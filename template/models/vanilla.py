"""Xiao et al. 2018's vanilla CNN: no normalisation, no skips, one width throughout, for very deep nets.

A stem of two stride-2 3×3 convolutions (CIFAR's 32×32 → 8×8, MNIST's 28×28 → 7×7), then `depth − 3`
stride-1 3×3 convolutions of `width` channels at that size, global average pooling and one linear
classifier. Every conv after the stem maps a space onto itself, so its Jacobian is square and can be an
isometry: with delta-orthogonal weights on the critical line of tanh, as σ²_b → 0, the spectrum of the
whole stack stays concentrated with depth (Pennington et al. 2017; docs/theory.md: ν = 0.12–0.16 at 128 layers
of width 16, σ²_b = 1e-8), which is what let Xiao et al. train these nets at thousands of layers. Where
the plain net spends its layers on 32×32 maps, this one spends them at 8×8, 16 times cheaper per layer:
a step of the 200-layer net takes about 0.2 s on one CPU core.
Padding is circular, as in Xiao et al.'s theory: with zero padding a border unit sums fewer inputs (28 of
64 positions at 8×8 are on the border), and over a hundred layers the gradient of a Gaussian-initialised
net shrinks by orders of magnitude for that reason alone. Delta-orthogonal weights are zero off the centre
tap, so at init the padding changes nothing for them.
`depth` counts weight layers, the classifier included.
"""

from collections import OrderedDict

from torch import nn

from template.errors import UsageError
from template.models import activations

STEM = 2  # stride-2 convs before the stack of square layers


class VanillaNet(nn.Sequential):
    def __init__(
        self,
        depth: int = 11,
        width: int = 16,
        num_classes: int = 10,
        activation: str = "tanh",
        negative_slope: float = 0.01,
        norm: str = "none",
        in_channels: int = 3,
    ):
        if depth < STEM + 2:
            raise UsageError(
                f"model.depth={depth} is too shallow for the vanilla net: it needs at least {STEM + 2} "
                f"({STEM} strided convs, one conv at the final size, the classifier)"
            )
        if norm != "none":
            raise UsageError(f"model.norm={norm!r}: the vanilla net has no normalisation; choose: none")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for index in range(1, depth):
            stride = 2 if index <= STEM else 1
            layers[f"conv{index}"] = nn.Conv2d(
                channels, width, 3, stride=stride, padding=1, padding_mode="circular"
            )
            layers[f"act{index}"] = activations.make(activation, negative_slope)
            channels = width
        layers["gap"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(width, num_classes)
        super().__init__(layers)
