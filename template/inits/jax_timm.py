"""Schemes from JAX and timm that neither torch nor Keras has. (JAX's `fan_geo_avg` mode lives in
`variance_scaling`, next to Keras' modes.)

Neither is a torch.nn.init function, so both are written out here, with torch doing the sampling.
"""

from __future__ import annotations

import torch
from torch import nn

from template.errors import UsageError
from template.inits.fans import Layer
from template.inits.registry import Positive, register


@register(
    "delta_orthogonal",
    convention="jax.nn.initializers.delta_orthogonal (Xiao et al. 2018): needs c_out ≥ c_in/groups, "
    "centre tap (k-1)//2 as in JAX; Linear layers (which JAX refuses) get plain orthogonal",
    formula="centre tap = scale·Q with Qᵀ·Q = I (c_out × c_in/groups), every other tap 0",
)
def delta_orthogonal(layer: Layer, *, scale: float = 1.0) -> None:
    """A conv that starts as an orthogonal map at one tap and zero elsewhere preserves norms exactly,
    which is what lets Xiao et al. train 10,000-layer plain CNNs; taps elsewhere would break that."""
    if isinstance(layer.module, nn.Linear):
        nn.init.orthogonal_(layer.weight, gain=scale)
        return
    c_out, c_in_per_group, *kernel = layer.shape
    if c_out < c_in_per_group:
        raise UsageError(
            f"delta_orthogonal needs c_out >= c_in/groups in every conv; "
            f"layer {layer.name!r} has c_out={c_out}, c_in/groups={c_in_per_group}"
        )

    def fill(w: torch.Tensor) -> None:
        tap = torch.empty(c_out, c_in_per_group, dtype=w.dtype, device=w.device)
        nn.init.orthogonal_(tap, gain=scale)
        w.zero_()
        w[(slice(None), slice(None), *((k - 1) // 2 for k in kernel))] = tap

    layer.init_weight(fill)


@register(
    "trunc_normal_tf",
    convention="timm trunc_normal_tf_ (TensorFlow/JAX style): bounds a, b in units of std around the "
    "mean; torch's trunc_normal takes absolute bounds; no 0.8796 correction",
    formula="mean + std·X, X ~ N(0, 1) truncated to [a, b]",
)
def trunc_normal_tf(
    layer: Layer, *, mean: float = 0.0, std: Positive = 1.0, a: float = -2.0, b: float = 2.0
) -> None:
    nn.init.trunc_normal_(layer.weight, mean=0.0, std=1.0, a=a, b=b)
    layer.weight.mul_(std).add_(mean)
