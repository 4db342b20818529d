"""Schemes that must know where the residual branches are: Fixup and zero-init-residual.

Both make every residual block start as the identity, so a deep ResNet starts as a shallow one, but they
need the architecture to say which layers form a branch. They learn it from a small protocol, which the
project's ResNet implements and a fork's model can too:

    A residual block is any module with a method `branch()` returning the weight layers (Conv/Linear
    modules) of its residual branch in forward order — the path added to the skip connection. Optionally
    it has `bn_last`, the branch's last BatchNorm, and scalar parameters registered on the block itself
    whose names start with `bias` (Fixup's scalar biases) or `scale` (Fixup's multiplier).

        class Block(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
                self.bias1, self.bias2 = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
                self.scale = nn.Parameter(torch.ones(1))

            def branch(self):
                return [self.conv1, self.conv2]

Layers outside every branch (stem, projection shortcuts, classifier) are ordinary layers; the last of
them in registration order is taken to be the classifier. A model without blocks is refused.
"""

from __future__ import annotations

from torch import nn

from template.errors import UsageError
from template.inits.fans import LAYER_TYPES, Layer, layers
from template.inits.registry import Mode, register
from template.inits.torch_schemes import kaiming_normal, pytorch_default


def _blocks(model: nn.Module, scheme: str) -> dict[str, list[Layer]]:
    """Each residual block's name -> its branch's layers; refuses a model without blocks."""
    names = {module: name for name, module in model.named_modules()}
    blocks = {}
    for name, module in model.named_modules():
        if callable(getattr(module, "branch", None)):
            branch = list(module.branch())
            for layer in branch:
                if not isinstance(layer, LAYER_TYPES) or layer not in names:
                    raise TypeError(
                        f"{name}.branch() must return Conv/Linear modules of the model; got {layer!r}"
                    )
            blocks[name] = [Layer(names[layer], layer) for layer in branch]
    if not blocks:
        raise UsageError(f"{scheme} needs a residual network (blocks with a residual branch); model has none")
    return blocks


@register(
    "fixup",
    convention="Zhang et al. 2019 (Fixup), for residual nets without normalisation; He normal with "
    "fan_out as in the reference code; the model must provide the scalar biases and multipliers",
    formula="L blocks of m layers: branch layers 1..m-1 N(0, √(2/fan))·L^(-1/(2m-2)); last branch "
    "layer and classifier 0; other layers N(0, √(2/fan)); scalar biases 0, multipliers 1",
)
def fixup(model: nn.Module, *, mode: Mode = "fan_out") -> dict[str, str]:
    blocks = _blocks(model, "fixup")
    for name, branch in blocks.items():
        if len(branch) < 2:
            raise UsageError(
                f"fixup needs at least 2 weight layers per residual branch; block {name!r} has 1"
            )
    in_branch = {layer.module for branch in blocks.values() for layer in branch}
    outside = [layer for layer in layers(model) if layer.module not in in_branch]
    set_by = {}
    for layer in outside[:-1]:
        kaiming_normal(layer, mode=mode, nonlinearity="relu")
        set_by[layer.param("weight")] = "fixup (kaiming_normal)"
        set_by.update(layer.zero_bias())
    for layer in outside[-1:]:
        layer.weight.zero_()
        set_by[layer.param("weight")] = "fixup (zero: classifier)"
        set_by.update(layer.zero_bias())
    depth = len(blocks)
    modules = dict(model.named_modules())
    for name, branch in blocks.items():
        factor = depth ** (-1 / (2 * len(branch) - 2))
        for layer in branch[:-1]:
            kaiming_normal(layer, mode=mode, nonlinearity="relu")
            layer.weight.mul_(factor)
            set_by[layer.param("weight")] = f"fixup (kaiming_normal ×L^(-1/(2m-2)) = ×{factor:.4g})"
            set_by.update(layer.zero_bias())
        branch[-1].weight.zero_()
        set_by[branch[-1].param("weight")] = "fixup (zero: last layer of branch)"
        set_by.update(branch[-1].zero_bias())
        for pname, param in modules[name].named_parameters(recurse=False):
            full = f"{name}.{pname}" if name else pname
            if pname.startswith("scale"):
                param.fill_(1.0)
                set_by[full] = "fixup (multiplier 1)"
            elif pname.startswith("bias"):
                param.zero_()
                set_by[full] = "fixup (scalar bias 0)"
    return set_by


@register(
    "zero_init_residual",
    convention="Goyal et al. 2017, as torchvision's ResNet(zero_init_residual=True): convs He normal "
    "fan_out, Linear layers torch's default, each block's bn_last γ = 0",
    formula="conv: N(0, √(2/fan)); Linear: pytorch_default; γ of every block's bn_last = 0",
)
def zero_init_residual(model: nn.Module, *, mode: Mode = "fan_out") -> dict[str, str]:
    blocks = _blocks(model, "zero_init_residual")
    modules = dict(model.named_modules())
    for name in blocks:
        bn = getattr(modules[name], "bn_last", None)
        if bn is None or getattr(bn, "weight", None) is None:
            raise UsageError(
                f"zero_init_residual needs every residual block to have bn_last (an affine BatchNorm, "
                f"the last of its branch); block {name!r} has none"
            )
    set_by = {}
    for layer in layers(model):
        if isinstance(layer.module, nn.Linear):
            bias_set_by = pytorch_default(layer)
            set_by[layer.param("weight")] = "pytorch_default"
            if layer.module.bias is not None:
                set_by[layer.param("bias")] = bias_set_by
        else:
            kaiming_normal(layer, mode=mode, nonlinearity="relu")
            set_by[layer.param("weight")] = "zero_init_residual (kaiming_normal)"
            set_by.update(layer.zero_bias())
    names = {module: name for name, module in model.named_modules()}
    for name in blocks:
        bn = modules[name].bn_last
        bn.weight.zero_()
        set_by[f"{names[bn]}.weight"] = "zero_init_residual (last BN γ = 0)"
    return set_by
