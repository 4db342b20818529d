"""`critical`: weights and biases on the order-to-chaos line of the model's own activation; `meanfield`:
anywhere in the (σ²_w, σ²_b) plane, the points of `make phase`'s trainability sweep.

Schoenholz et al. 2017: a net whose (σ²_w, σ²_b) satisfies χ₁ = σ²_w E[φ′(√q* z)²] = 1 at the length
map's fixed point q* keeps correlations between inputs over a depth scale ξ_c that diverges, and trains
at depths where the ordered and chaotic phases do not. Xiao et al. 2018 add orthogonal (delta-orthogonal)
weights there, which makes the input-output Jacobian's singular values concentrate too. σ²_w is computed
from the activation the model actually uses (its first elementwise module) by `fixed_points`, so a tanh
net gets σ²_w = 1.761 at σ²_b = 0.05, and ReLU (critical only at σ²_b = 0) gets He's 2. Only a stable
critical point counts: GELU and SiLU have χ₁ = 1 at small σ²_b only on the unstable branch of fixed
points, which no net stays on, so there the init refuses, naming the σ²_b from which one exists.

`start=fixed_point` scales the first layer so that its pre-activations start at the length map's fixed
point q* on inputs of unit second moment (every data module standardises each channel): Pennington et
al. 2017 and Xiao et al. 2018 feed their nets inputs at q*. With `start=input` a standardised image puts
the first layer at q ≈ σ²_w, and near σ²_b = 0 the length map returns to q* only as a power law: at σ²_b
= 1e-8 tanh's q falls from 0.35 to 0.006 over 128 layers, χ₁ < 1 all the way, and the Jacobian's mean
squared singular value ends near 0.03 instead of 1.
"""

from __future__ import annotations

import inspect
import math
from typing import Annotated, Literal

import torch
from torch import nn

from template.errors import UsageError
from template.inits.fans import layers
from template.inits.jax_timm import delta_orthogonal
from template.inits.registry import Check, Positive, register
from template.theory import fixed_points
from template.theory.propagation import ELEMENTWISE_MODULES

NonNegative = Annotated[float, Check(lambda v: v >= 0, "a non-negative number")]


def activation_of(model: nn.Module) -> nn.Module:
    found = next((m for m in model.modules() if isinstance(m, ELEMENTWISE_MODULES)), None)
    if found is None:
        raise UsageError("init.name=critical needs an elementwise activation in the model; it has none")
    return found


@register(
    "critical",
    convention="Schoenholz et al. 2017 (order-to-chaos line) for the model's activation; orthogonal: "
    "Xiao et al. 2018's delta-orthogonal convs; start=fixed_point: the first layer at q* (their inputs)",
    formula="σ²_w with χ₁(σ²_w, σ²_b) = 1, σ²_b = bias_var; normal: W ~ N(0, σ²_w/fan_in); orthogonal: "
    "centre tap gain·Q, gain = √(σ²_w c_out/c_in); b ~ N(0, σ²_b); fixed_point: first W ×√((q*−σ²_b)/σ²_w)",
)
def critical(
    model: nn.Module,
    *,
    bias_var: NonNegative = 0.05,
    distribution: Literal["normal", "orthogonal"] = "normal",
    start: Literal["input", "fixed_point"] = "input",
) -> dict[str, str]:
    phi = activation_of(model)
    point = fixed_points.structure(phi, bias_var).stable_critical
    if point is None:
        name = type(phi).__name__
        reason = fixed_points.refusal(phi, bias_var)
        raise UsageError(
            f"init.options.bias_var={bias_var:g}: {name} has no stable critical point there: {reason}"
        )
    weight_var = point.weight_var
    label = f"critical (σ²_w={weight_var:.4g}, σ²_b={bias_var:g}, {distribution})"
    set_by = draw(model, weight_var, bias_var, distribution, label)
    if start == "fixed_point":
        first = next(iter(layers(model)))
        q_star = point.q if math.isfinite(point.q) else fixed_points.fixed_point(phi, weight_var, bias_var)
        # n·Var[w]·E[x²] + σ²_b = q* with E[x²] = 1: the weights' variance times (q* − σ²_b)/σ²_w
        with torch.no_grad():
            first.weight.mul_(math.sqrt((q_star - bias_var) / weight_var))
        set_by[first.param("weight")] = f"{label}, scaled to start at q*={q_star:.4g}"
    return set_by


@register(
    "meanfield",
    convention="Poole et al. 2016 / Schoenholz et al. 2017's (σ²_w, σ²_b) parametrisation, anywhere in the "
    "plane (make phase sweeps it); orthogonal: delta-orthogonal convs as in critical",
    formula="normal: W ~ N(0, weight_var/fan_in); orthogonal: centre tap gain·Q, "
    "gain = √(weight_var c_out/c_in); b ~ N(0, bias_var)",
)
def meanfield_init(
    model: nn.Module,
    *,
    weight_var: Positive = 1.0,
    bias_var: NonNegative = 0.0,
    distribution: Literal["normal", "orthogonal"] = "normal",
) -> dict[str, str]:
    label = f"meanfield (σ²_w={weight_var:g}, σ²_b={bias_var:g}, {distribution})"
    return draw(model, weight_var, bias_var, distribution, label)


def draw(
    model: nn.Module, weight_var: float, bias_var: float, distribution: str, label: str
) -> dict[str, str]:
    set_by = {}
    for layer in layers(model):
        if distribution == "normal":
            std = math.sqrt(weight_var / layer.fan_in)
            layer.init_weight(lambda w, std=std: nn.init.normal_(w, 0, std))
        else:
            c_out, c_in = layer.shape[0], layer.shape[1]
            delta_orthogonal(layer, scale=math.sqrt(weight_var * c_out / c_in))
        set_by[layer.param("weight")] = label
        if layer.module.bias is not None:
            nn.init.normal_(layer.module.bias, 0, math.sqrt(bias_var))
            set_by[layer.param("bias")] = label
    return set_by


def nominal(model: nn.Module, name: str, options: dict) -> tuple[float, float] | None:
    """The (σ²_w, σ²_b) that init `name` puts every layer at, where it states one (critical, meanfield,
    tat, dks);
    None for the others, whose σ²_w a reader takes from the drawn weights."""
    if name in ("tat", "dks"):
        return 1.0, 0.0  # their transforms are solved for exactly these (inits/kernel_shaping.py)
    scheme = {"critical": critical, "meanfield": meanfield_init}.get(name)
    if scheme is None:
        return None
    parameters = inspect.signature(scheme).parameters.values()
    settings = {p.name: p.default for p in parameters if p.default is not p.empty} | dict(options)
    if name == "meanfield":
        return settings["weight_var"], settings["bias_var"]
    point = fixed_points.structure(activation_of(model), settings["bias_var"]).stable_critical
    return (point.weight_var, settings["bias_var"]) if point else None
