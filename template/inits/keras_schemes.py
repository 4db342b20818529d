"""Keras' schemes, which differ from torch's under similar names.

Keras' "normal" initialisers are truncated: they draw from a normal cut at ±2σ, and since cutting the
tails shrinks the spread, σ is first divided by 0.87962566103423978 — the std of a unit normal truncated
to [-2, 2] — so the result has exactly the variance the rule asks for. torch's kaiming_normal_ and
xavier_normal_ are untruncated; hence `he_normal` ≠ `kaiming_normal` and `glorot_normal` ≠
`xavier_normal`. JAX (`jax.nn.initializers`) and timm (`variance_scaling_`, `lecun_normal_`) follow
Keras, and JAX adds the `fan_geo_avg` mode, accepted here too.

torch has no variance-scaling function, so `variance_scaling` is written out here, with
`torch.nn.init` doing the sampling; every named Keras scheme below is a special case of it.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import nn

from template.inits.fans import Layer
from template.inits.registry import Positive, register
from template.inits.torch_schemes import dirac

TRUNCATED_NORMAL_STD = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2], as Keras and JAX write it

FanMode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
# Keras' names. Plain "normal" is refused on purpose: it meant truncated in old Keras, untruncated in JAX.
Distribution = Literal["truncated_normal", "untruncated_normal", "uniform"]


@register(
    "variance_scaling",
    convention="Keras VarianceScaling (= jax.nn.initializers.variance_scaling; fan_geo_avg from JAX)",
    formula="Var = scale/n, n = fan_in | fan_out | (fan_in+fan_out)/2 | √(fan_in·fan_out); "
    "truncated_normal: N(0, σ) cut at ±2σ, σ = √(scale/n)/0.8796…; "
    "untruncated_normal: N(0, √(scale/n)); uniform: U(±√(3·scale/n))",
)
def variance_scaling(
    layer: Layer,
    *,
    scale: Positive = 1.0,
    mode: FanMode = "fan_in",
    distribution: Distribution = "truncated_normal",
) -> None:
    variance = scale / layer.fan(mode)
    if distribution == "truncated_normal":
        std = math.sqrt(variance) / TRUNCATED_NORMAL_STD
        nn.init.trunc_normal_(layer.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
    elif distribution == "untruncated_normal":
        nn.init.normal_(layer.weight, mean=0.0, std=math.sqrt(variance))
    else:
        limit = math.sqrt(3 * variance)
        nn.init.uniform_(layer.weight, -limit, limit)


@register(
    "glorot_uniform",
    aliases=("glorot",),
    convention="Keras GlorotUniform, Keras' default for Dense and Conv kernels (= torch xavier_uniform)",
    formula="U(±√(6/(fan_in+fan_out)))",
)
def glorot_uniform(layer: Layer) -> None:
    variance_scaling(layer, scale=1.0, mode="fan_avg", distribution="uniform")


@register(
    "glorot_normal",
    convention="Keras GlorotNormal: truncated at ±2σ",
    formula="N(0, σ) cut at ±2σ, σ = √(2/(fan_in+fan_out))/0.8796…",
)
def glorot_normal(layer: Layer) -> None:
    variance_scaling(layer, scale=1.0, mode="fan_avg", distribution="truncated_normal")


@register(
    "he_normal",
    convention="Keras HeNormal (= JAX he_normal): truncated at ±2σ, unlike torch kaiming_normal",
    formula="N(0, σ) cut at ±2σ, σ = √(2/fan_in)/0.8796…",
)
def he_normal(layer: Layer) -> None:
    variance_scaling(layer, scale=2.0, mode="fan_in", distribution="truncated_normal")


@register(
    "lecun_normal",
    convention="Keras LecunNormal (= JAX lecun_normal, timm lecun_normal_): truncated at ±2σ",
    formula="N(0, σ) cut at ±2σ, σ = √(1/fan_in)/0.8796…",
)
def lecun_normal(layer: Layer) -> None:
    variance_scaling(layer, scale=1.0, mode="fan_in", distribution="truncated_normal")


@register(
    "lecun_uniform",
    convention="Keras LecunUniform (= JAX lecun_uniform)",
    formula="U(±√(3/fan_in))",
)
def lecun_uniform(layer: Layer) -> None:
    variance_scaling(layer, scale=1.0, mode="fan_in", distribution="uniform")


@register(
    "identity",
    convention="Keras Identity on Linear layers; convs (which Keras refuses) get gain·dirac",
    formula="gain·I; conv: gain at the centre tap [d, d] per group, 0 elsewhere",
)
def identity(layer: Layer, *, gain: float = 1.0) -> None:
    dirac(layer)
    layer.weight.mul_(gain)
