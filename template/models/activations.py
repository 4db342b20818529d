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


register("relu")(lambda negative_slope: nn.ReLU())
register("leaky_relu")(lambda negative_slope: nn.LeakyReLU(negative_slope))
register("tanh")(lambda negative_slope: nn.Tanh())
register("gelu")(lambda negative_slope: nn.GELU())
register("silu")(lambda negative_slope: nn.SiLU())
