"""Simonyan & Zisserman 2015's VGG, adapted to small inputs the way CIFAR code bases usually do.

`depth` picks one of the paper's configurations by its usual name: 11 (A), 13 (B), 16 (D) or 19 (E).
The paper counts its three fully connected layers in that number; on 32×32 inputs the five 2×2 max
pools leave a 1×1 map, so those layers would only add parameters, and here a global average pool and
one linear classifier replace them (as in most CIFAR VGGs). A "VGG-16" therefore has 13 convolutions
and 14 weight layers, not 16 — `depth` names the layout, it does not count layers as `plain` does.

The pools round up (`ceil_mode`): five of them take 32×32 to 1×1 as before, and a 28×28 or 16×16
image to 1×1 as well (28 → 14 → 7 → 4 → 2 → 1), where flooring pools would shrink the map to nothing.

`width` scales every channel count by width/64, so width=64 is the paper's 64-128-256-512-512 and the
config's default width=16 gives 16-32-64-128-128 (a quick, CPU-friendly VGG). `norm=batch` puts
batch norm after every convolution (Ioffe & Szegedy 2015; "VGG-BN") and drops the convolutions' biases,
which batch norm would cancel; `norm=none` is the original, with biases.

Layers are named by stage (the convolutions between two pools): `stage3.conv2` is the second
convolution of the third stage, and its W&B keys read `act_var/stage3.conv2`.
"""

from collections import OrderedDict

from torch import nn

from template.errors import UsageError
from template.models import activations

# Output channels of each stage's convolutions at width=64 (the paper's Table 1); a pool ends each stage.
LAYOUTS: dict[int, list[list[int]]] = {
    11: [[64], [128], [256, 256], [512, 512], [512, 512]],
    13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    19: [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


def depths() -> list[int]:
    return sorted(LAYOUTS)


class VGG(nn.Sequential):
    def __init__(
        self,
        depth: int = 11,
        width: int = 16,
        num_classes: int = 10,
        activation: str = "relu",
        negative_slope: float = 0.01,
        norm: str = "none",
        in_channels: int = 3,
    ):
        if depth not in LAYOUTS:
            valid = ", ".join(str(d) for d in depths())
            raise UsageError(f"model.depth={depth} is not a vgg depth; choose one of: {valid}")
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for stage, widths in enumerate(LAYOUTS[depth], start=1):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            for index, paper_channels in enumerate(widths, start=1):
                out_channels = paper_channels * width // 64
                layers[f"conv{index}"] = nn.Conv2d(channels, out_channels, 3, padding=1, bias=norm == "none")
                if norm == "batch":
                    layers[f"bn{index}"] = nn.BatchNorm2d(out_channels)
                layers[f"act{index}"] = activations.make(activation, negative_slope)
                channels = out_channels
            layers["pool"] = nn.MaxPool2d(2, ceil_mode=True)
            stages[f"stage{stage}"] = nn.Sequential(layers)
        stages["gap"] = nn.AdaptiveAvgPool2d(1)
        stages["flatten"] = nn.Flatten()
        stages["fc"] = nn.Linear(channels, num_classes)
        super().__init__(stages)
