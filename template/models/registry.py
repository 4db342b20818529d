"""The models by `model.name`: the one list the config validates against and `build` reads.

A fork adds its own model by writing a class that takes the keyword arguments below (ignoring those it
has no use for) and adding it to `MODELS`. Its activations come from `template.models.activations`, whose
modules the variance monitor's mean-field theory integrates exactly (any activation, not only ReLU).
"""

from torch import nn

from template.errors import UsageError
from template.models.plain import PlainNet
from template.models.resnet import ResNet
from template.models.vanilla import VanillaNet
from template.models.vgg import VGG

MODELS: dict[str, type[nn.Module]] = {"plain": PlainNet, "vgg": VGG, "resnet": ResNet, "vanilla": VanillaNet}


def available() -> list[str]:
    return sorted(MODELS)


def build(name: str, **options) -> nn.Module:
    """`options`: depth, width, num_classes, activation, negative_slope, norm, in_channels (the data's
    channels; every model takes any height and width)."""
    if name not in MODELS:
        raise UsageError(f"model.name={name!r} is unknown; choose one of: {', '.join(available())}")
    return MODELS[name](**options)
