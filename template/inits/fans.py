"""Fan computation, once, for every scheme in the registry.

A scheme's bound or std is a function of two numbers, and the libraries this registry copies mostly
agree on them: for a weight of forward-conv layout (c_out, c_in/groups, *kernel),

    fan_in  = c_in/groups · ∏kernel     (inputs feeding one output unit)
    fan_out = c_out · ∏kernel           (torch, Keras and JAX do not divide by groups here; timm's
                                         EfficientNet init does — we follow the libraries)

and a Linear weight (out, in) is the kernel-less case. Stride and dilation are ignored, as everywhere.

The exception is ConvTranspose: torch stores its weight as (c_in, c_out/groups, *kernel), and both
`torch.nn.init` and Keras compute fans from the raw layout, so they silently swap fan_in and fan_out
(and mis-divide by groups). Here a transposed conv is viewed in the forward-conv layout it would have
if it were an ordinary conv from c_in to c_out — `Layer.shape` — so its fans mean what they mean for
every other layer. `Layer.init_weight` hands a scheme the weight in that layout, which lets the torch
schemes call `torch.nn.init` unchanged and still get the right fans and the right orthogonal axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from template.errors import UsageError

TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, *TRANSPOSED)


@dataclass(frozen=True)
class Layer:
    """A Conv/Linear module with its name from `named_modules()`: what a per-layer scheme receives."""

    name: str
    module: nn.Module

    @property
    def weight(self) -> torch.Tensor:
        return self.module.weight

    @property
    def transposed(self) -> bool:
        return isinstance(self.module, TRANSPOSED)

    @property
    def groups(self) -> int:
        return getattr(self.module, "groups", 1)

    @property
    def shape(self) -> torch.Size:
        """The weight's shape in forward-conv layout: (c_out, c_in/groups, *kernel)."""
        shape = self.weight.shape
        if not self.transposed:
            return shape
        c_in, c_out_per_group, *kernel = shape
        return torch.Size((c_out_per_group * self.groups, c_in // self.groups, *kernel))

    @property
    def fan_in(self) -> int:
        return self.shape[1] * math.prod(self.shape[2:])

    @property
    def fan_out(self) -> int:
        return self.shape[0] * math.prod(self.shape[2:])

    def fan(self, mode: str) -> float:
        """The denominator of a variance-scaling rule: Keras' three modes plus JAX's geometric mean."""
        if mode == "fan_in":
            return self.fan_in
        if mode == "fan_out":
            return self.fan_out
        if mode == "fan_avg":
            return (self.fan_in + self.fan_out) / 2
        if mode == "fan_geo_avg":
            return math.sqrt(self.fan_in * self.fan_out)
        raise ValueError(f"unknown fan mode {mode!r}")

    def init_weight(self, fill: Callable[[torch.Tensor], object]) -> None:
        """Run an in-place initialiser on the weight in forward-conv layout (see the module docstring)."""
        with torch.no_grad():
            if not self.transposed:
                fill(self.weight)
                return
            c_in, c_out_per_group, *kernel = self.weight.shape
            g = self.groups
            grouped = self.weight.reshape(g, c_in // g, c_out_per_group, *kernel).transpose(1, 2)
            # A fresh contiguous copy: `fill` may `view` it, and it must never alias the raw weight.
            forward = torch.clone(grouped, memory_format=torch.contiguous_format).view(self.shape)
            fill(forward)
            back = forward.view(g, c_out_per_group, c_in // g, *kernel).transpose(1, 2)
            self.weight.copy_(back.reshape(self.weight.shape))

    def param(self, attribute: str) -> str:
        """The parameter's name as `model.named_parameters()` spells it."""
        return f"{self.name}.{attribute}" if self.name else attribute

    def zero_bias(self) -> dict[str, str]:
        """Biases start at zero unless a scheme says otherwise; returns the report entry."""
        if self.module.bias is None:
            return {}
        with torch.no_grad():
            self.module.bias.zero_()
        return {self.param("bias"): "zeros (bias)"}


def layers(model: nn.Module) -> Iterator[Layer]:
    """Every Conv/Linear/ConvTranspose of the model, in registration order, shared modules once."""
    for name, module in model.named_modules():
        if isinstance(module, LAYER_TYPES):
            if isinstance(module.weight, nn.parameter.UninitializedParameter):
                raise UsageError(
                    f"layer {name!r} is lazy and has no weight yet; run one forward pass before init"
                )
            yield Layer(name, module)
