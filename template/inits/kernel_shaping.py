"""`tat` and `dks`: reshape the model's activation for its own depth, then draw σ²_w = 1, σ²_b = 0 weights.

He et al.'s init keeps a deep ReLU net's variance, not its kernel: the ReLU c-map drives every pair of
inputs towards correlation 1 with depth, so at 200 layers every image has nearly the same features.
Martens et al. 2021 (Deep Kernel Shaping) and Zhang et al. 2022 (Tailored Activation Transformation)
choose the activation instead, from the network's depth L, so that the whole net's c-map stays well
shaped:
  tat, leaky ReLU   φ̂(x) = √(2/(1+α²)) LeakyReLU_α(x), α chosen so that the c-map of the L-layer chain
                    at c = 0 is η (default 0.9): Q(q) = q exactly, and C_f(0) = η < 1 however deep;
  tat, smooth φ     φ̂(x) = γ(φ(αx + β) + δ) with Q(1) = 1, Q'(1) = 1, C'(1) = 1 and C_f''(1) = τ;
  dks, any φ        the same four numbers with Q(1) = 1, Q'(1) = 1, C(0) = 0 and C_f'(1) = ζ (1.5).
The numbers come from DeepMind's `dks` package (its solver, with the subnetwork-maximising function of
a chain: r composed L times); the theory's own maps check them (tests/inits/test_inits_kernel_shaping.py).
The weights are the papers': delta-orthogonal convs (orthogonal at the centre tap, scaled so that a
layer preserves q) or, with `distribution=normal`, N(0, 1/fan_in); biases zero.

What this assumes: a chain (plain, vgg, vanilla), whose every activation is one nonlinear layer of the
path — a ResNet's subnetworks need the residual weights in the maximising function, so it is refused;
inputs of unit second moment per position (every data module standardises each channel: on average).
Plain ReLU has no slope to choose (TAT refuses it in the paper, and DKS discourages it): use leaky_relu.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Annotated, Literal

from torch import nn

from template.errors import UsageError
from template.inits.critical import draw
from template.inits.registry import Check, Positive, register
from template.models.activations import Transformed
from template.theory.propagation import ELEMENTWISE_MODULES

OpenUnit = Annotated[float, Check(lambda v: 0 < v < 1, "a number in (0, 1)")]
AboveOne = Annotated[float, Check(lambda v: v > 1, "a number above 1")]
Distribution = Literal["orthogonal", "normal"]
DKS_NAMES = {"leaky_relu": "leaky_relu", "tanh": "tanh", "gelu": "gelu_exact", "silu": "swish"}


def base_of(module: nn.Module, scheme: str) -> tuple[str, float]:
    """The project's name of an activation module and its negative slope (leaky ReLU's; 0 otherwise). A
    module transformed before (the init run again) is transformed afresh from its base."""
    if isinstance(module, Transformed):
        return module.base, module.negative_slope
    if isinstance(module, nn.LeakyReLU):
        return "leaky_relu", module.negative_slope
    if isinstance(module, nn.GELU) and module.approximate == "none":
        return "gelu", 0.0
    kinds = {nn.Tanh: "tanh", nn.SiLU: "silu"}
    if type(module) in kinds:
        return kinds[type(module)], 0.0
    name = type(module).__name__
    hint = "; ReLU has no negative slope to choose, use leaky_relu" if isinstance(module, nn.ReLU) else ""
    raise UsageError(
        f"init.name={scheme} transforms model.activation leaky_relu, tanh, gelu or silu; "
        f"the model has {name}{hint}"
    )


def activations_of_chain(model: nn.Module, scheme: str) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute, activation) for each activation, in order; refuses a model with blocks."""
    found = []
    for name, module in model.named_modules():
        if isinstance(module, ELEMENTWISE_MODULES):
            parent_name, _, attribute = name.rpartition(".")
            found.append((model.get_submodule(parent_name), attribute, module))
        elif list(module.children()) and not isinstance(module, nn.Sequential):
            raise UsageError(
                f"init.name={scheme} shapes the kernel of a chain of layers (model.name plain, vgg or "
                f"vanilla); {type(module).__name__} {name!r} has paths of its own"
            )
    if not found:
        raise UsageError(f"init.name={scheme} needs an elementwise activation in the model; it has none")
    return found


def chain(depth: int):
    """The subnetwork-maximising function M(x, r) of a chain of `depth` nonlinear layers: the deepest
    subnetwork is the whole chain, so r composed `depth` times (Zhang et al. 2022, appendix)."""

    def maximising(x: float, local_map) -> float:
        for _ in range(depth):
            x = local_map(x)
        return x

    return maximising


@lru_cache(maxsize=32)
def transform(method: str, base: str, depth: int, target: float) -> dict[str, float]:
    """`Transformed`'s keyword arguments for `depth` layers of `base`, from dks's solver."""
    from dks.base import activation_transform  # imports autograd: only when a run asks for it

    name = DKS_NAMES[base]
    targets = (
        {"dks_params": {"c_slope_1_target": target}}
        if method == "dks"
        else {"tat_params": {"c_val_0_target" if base == "leaky_relu" else "c_curve_target": target}}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # autograd's overflow warnings while the solver explores
        try:
            params = activation_transform._get_activations_params(
                [name], method=method.upper(), subnet_max_func=chain(depth), **targets
            )[name]
        except ValueError:  # dks: the target is out of reach at this depth
            raise UsageError(_unreachable(method, base, depth, target)) from None
    return {key: float(value) for key, value in params.items()}


def _unreachable(method: str, base: str, depth: int, target: float) -> str:
    option = {"dks": "zeta"}.get(method, "eta" if base == "leaky_relu" else "tau")
    message = f"init.options.{option}={target:g} cannot be reached by {depth} {base} layers"
    if method == "tat" and base == "leaky_relu":
        # the most a chain can bend is slope 0 (ReLU): its c-map composed `depth` times sends 0 to `relu`
        relu = chain(depth)(0.0, lambda c: (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi)
        reach = f"even ReLU's c-map sends 0 to {relu:.3f} over them"
        return f"{message}: {reach}; choose eta below that or more layers"
    return f"{message}; choose another target or more layers"


def _apply(model: nn.Module, method: str, target: float, distribution: str) -> dict[str, str]:
    layers = activations_of_chain(model, method)
    bases = {base_of(module, method) for _, _, module in layers}
    if len(bases) > 1:
        raise UsageError(f"init.name={method} needs one activation throughout; the model has {sorted(bases)}")
    ((base, slope),) = bases
    params = transform(method, base, len(layers), target)
    options = ({"negative_slope": slope} if base == "leaky_relu" else {}) | params  # dks's solved slope wins
    for parent, attribute, _ in layers:
        setattr(parent, attribute, Transformed(base, **options))
    shown = ", ".join(f"{key}={value:.4g}" for key, value in options.items())
    label = f"{method} ({base} for {len(layers)} layers: {shown}; σ²_w=1, σ²_b=0, {distribution})"
    return draw(model, 1.0, 0.0, distribution, label)


@register(
    "tat",
    convention="Zhang et al. 2022 (TAT): leaky ReLU's slope set so the L-layer c-map has C_f(0) = eta; "
    "smooth φ: C_f''(1) = tau; weights delta-orthogonal (or normal) with σ²_w = 1, zero biases",
    formula="φ̂ = √(2/(1+α²))·LeakyReLU_α, α: C∘…∘C(0) = eta over L layers; W: centre tap √(c_out/c_in)·Q",
)
def tat(
    model: nn.Module, *, eta: OpenUnit = 0.9, tau: Positive = 0.3, distribution: Distribution = "orthogonal"
) -> dict[str, str]:
    base, _ = base_of(activations_of_chain(model, "tat")[0][2], "tat")
    return _apply(model, "tat", eta if base == "leaky_relu" else tau, distribution)


@register(
    "dks",
    convention="Martens et al. 2021 (DKS): φ̂ = γ(φ(αx+β)+δ) with Q(1) = 1, Q'(1) = 1, C(0) = 0 and the "
    "L-layer C_f'(1) = zeta; weights delta-orthogonal (or normal) with σ²_w = 1, zero biases",
    formula="φ̂ = γ(φ(αx+β)+δ), (α, β, γ, δ) from dks's solver; W: centre tap √(c_out/c_in)·Q",
)
def dks(
    model: nn.Module, *, zeta: AboveOne = 1.5, distribution: Distribution = "orthogonal"
) -> dict[str, str]:
    return _apply(model, "dks", zeta, distribution)
