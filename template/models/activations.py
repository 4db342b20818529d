"""Activations by name: one registry, which the models build from and the config validates against.

The variance monitor's mean-field theory needs no constant "gain" per activation: it integrates the
activation itself against a Gaussian (template/theory/meanfield.py), so any elementwise module
registered here, by this project or a fork, gets an exact length, correlation and gradient map.
ReLU's ½ (He et al. 2015) and leaky ReLU's ½(1 + a²) fall out of that integral; tanh's and GELU's
depend on the variance, which is why a constant gain was wrong for them.

    @activations.register("softplus")
    def softplus(negative_slope: float) -> nn.Module:
        return nn.Softplus()
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from template.errors import UsageError

_FACTORIES: dict[str, Callable[[float], nn.Module]] = {}


def register(name: str) -> Callable:
    """Decorator: a factory taking `negative_slope` (most ignore it) and returning an elementwise module."""

    def decorate(factory: Callable[[float], nn.Module]) -> Callable[[float], nn.Module]:
        if name in _FACTORIES:
            raise ValueError(f"activation {name!r} is already registered")
        _FACTORIES[name] = factory
        return factory

    return decorate


def available() -> list[str]:
    return list(_FACTORIES)


def make(name: str, negative_slope: float = 0.01) -> nn.Module:
    if name not in _FACTORIES:
        raise UsageError(f"model.activation={name!r} is unknown; choose one of: {', '.join(available())}")
    return _FACTORIES[name](negative_slope)


BASE_FUNCTIONS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "leaky_relu": F.leaky_relu,
    "tanh": lambda x, negative_slope: torch.tanh(x),
    "gelu": lambda x, negative_slope: F.gelu(x),  # exact (erf), as nn.GELU()
    "silu": lambda x, negative_slope: F.silu(x),
}


class Transformed(nn.Module):
    """φ̂(x) = output_scale · (φ(input_scale · x + input_shift) + output_shift): an activation reshaped
    so that a deep net's kernel keeps its shape (Martens et al. 2021's DKS, Zhang et al. 2022's TAT;
    the `dks` and `tat` inits compute the four numbers and put this module in place of the model's own).
    Elementwise and parameter-free, so the mean-field theory integrates it like any other activation.
    The base φ is named, not held as a submodule, so the model's modules list each activation once."""

    def __init__(
        self,
        base: str,
        negative_slope: float = 0.0,
        input_scale: float = 1.0,
        input_shift: float = 0.0,
        output_shift: float = 0.0,
        output_scale: float = 1.0,
    ):
        super().__init__()
        if base not in BASE_FUNCTIONS:
            raise UsageError(f"no transform of {base!r}; choose one of: {', '.join(BASE_FUNCTIONS)}")
        self.base, self.negative_slope = base, float(negative_slope)
        self.input_scale, self.input_shift = float(input_scale), float(input_shift)
        self.output_shift, self.output_scale = float(output_shift), float(output_scale)
        self._phi = BASE_FUNCTIONS[base]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inner = self._phi(x * self.input_scale + self.input_shift, self.negative_slope)
        return (inner + self.output_shift) * self.output_scale

    def extra_repr(self) -> str:
        slope = f", negative_slope={self.negative_slope:.4g}" if self.base == "leaky_relu" else ""
        return (
            f"{self.base}{slope}, input_scale={self.input_scale:.4g}, input_shift={self.input_shift:.4g}, "
            f"output_shift={self.output_shift:.4g}, output_scale={self.output_scale:.4g}"
        )


register("relu")(lambda negative_slope: nn.ReLU())
register("leaky_relu")(lambda negative_slope: nn.LeakyReLU(negative_slope))
register("tanh")(lambda negative_slope: nn.Tanh())
register("gelu")(lambda negative_slope: nn.GELU())
register("silu")(lambda negative_slope: nn.SiLU())
