"""He et al. 2015's plain network, for images of any channels and size (sized for CIFAR's 32×32).

A stack of stride-1 3×3 convolutions (padding 1, so square layers keep their shape and their fan
n = 9c), in three stages of width w, 2w, 4w separated by 2×2 max pooling, then global average pooling
and one linear classifier. No batch norm by default: it would hide exactly the variance drift this
template exists to show. `depth` counts weight layers, the classifier included, like the paper's
"22-layer" and "30-layer" models; the convolutions are spread over the stages as evenly as possible,
earlier stages taking the remainder. The pools round up (`ceil_mode`), so odd and small maps (28×28 →
14 → 7, 3×3 → 2 → 1) keep every pixel and never shrink to nothing; on even sizes that changes nothing.
"""

from collections import OrderedDict

from torch import nn

from template.models import activations

STAGES = 3


def convs_per_stage(depth: int) -> list[int]:
    convs = depth - 1
    return [convs // STAGES + (1 if stage < convs % STAGES else 0) for stage in range(STAGES)]


class PlainNet(nn.Sequential):
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
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels, index = in_channels, 0
        for stage, count in enumerate(convs_per_stage(depth)):
            out_channels = width * 2**stage
            for _ in range(count):
                index += 1
                layers[f"conv{index}"] = nn.Conv2d(channels, out_channels, 3, padding=1, bias=norm == "none")
                if norm == "batch":
                    layers[f"bn{index}"] = nn.BatchNorm2d(out_channels)
                layers[f"act{index}"] = activations.make(activation, negative_slope)
                channels = out_channels
            if count and stage < STAGES - 1:
                layers[f"pool{stage + 1}"] = nn.MaxPool2d(2, ceil_mode=True)
        layers["gap"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(channels, num_classes)
        super().__init__(layers)
