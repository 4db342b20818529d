"""The Jacobian of a stretch of layers (`Stretch`; `template.monitor.jacobian` measures it) at
initialisation, in mean-field theory. `mean_field`: the mean of its squared singular values is the chained
backward map, g_from/g_to·n_from/k, from the gradient variances of `propagation`. The normalised variance
adds over layers, because the layers' factors are free (Pennington et al. 2017): ν = Σ_l [E φ′⁴/(E φ′²)² −
1 at q_l] + Σ_l ν(W_l W_lᵀ), the second term from the layer's own weights (a stride-1 conv through its
Fourier blocks, taken as circular; 0 for orthogonal and delta-orthogonal weights, 1 for square Gaussian
ones). ReLU with Kaiming weights: ν = 2 per layer.

Position by position, where the stretch never mixes positions (a sequential stack of convs whose weights
are zero off the centre tap — delta-orthogonal at init — and elementwise activations): the Jacobian is
then block diagonal, one C × C block per position, and each position keeps the norm it starts with, since
an orthogonal map preserves it. For a delta-orthogonal stem that norm is one input pixel's (3 degrees of
freedom), so positions start far apart and stay apart, and the mean-field chain, which sees only their
average, misses the spread: at 128 layers of width 16, σ²_b = 1e-8, it predicts ν = 0.004 where the
estimate reads 0.08, and with a data-driven start a mean of 0.75 where the estimate reads 1.04. The
theory then runs the length map and χ₁ from each position's measured start q_p (`position_by_position`): the
block's mean G_p = Π_l σ²_w,l E φ′²(q_l,p) and its ν_p = Σ_l [E φ′⁴/(E φ′²)² − 1 at q_l,p] + ν(W_l), pooled
as m₁ = ⟨G_p⟩, m₂ = ⟨G_p²(1 + ν_p)⟩ over positions and samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from template.theory import meanfield
from template.theory.propagation import ELEMENTWISE_MODULES, parameter_variances


@dataclass
class Stretch:
    start: str
    end: str
    layers: list[str]  # monitored layers from start to end, both included
    shapes: dict[str, tuple[int, ...]]  # each layer's output shape for one sample

    def units(self, name: str) -> int:
        return math.prod(self.shapes[name])


def position_wise(model: nn.Module, span: Stretch) -> bool:
    """True where no module of the stretch mixes positions: a sequential stack, from start to end, of
    stride-1 convs with weights zero off the centre tap and elementwise activations."""
    if not isinstance(model, nn.Sequential):
        return False
    names = [name for name, _ in model.named_children()]
    if span.start not in names or span.end not in names:
        return False
    inside = [
        model.get_submodule(name) for name in names[names.index(span.start) + 1 : names.index(span.end) + 1]
    ]
    return all(isinstance(m, ELEMENTWISE_MODULES) or _centre_only(m) for m in inside)


def _centre_only(module: nn.Module) -> bool:
    if not (isinstance(module, nn.Conv2d) and module.stride == (1, 1) and module.groups == 1):
        return False
    kh, kw = module.kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        return False
    off_centre = module.weight.detach().clone()
    off_centre[:, :, kh // 2, kw // 2] = 0
    return not off_centre.any()


def weight_terms(model: nn.Module, span: Stretch) -> list[float]:
    """ν(W_l W_lᵀ) of every layer after the stretch's first: taken when the spectrum is measured, since
    the statistics (and the rest of the theory) are finalised after that step's update."""
    return [weight_nvar(model.get_submodule(name), span.shapes[name]) for name in span.layers[1:]]


def mean_field(
    span: Stretch,
    names: list[str],
    act_var_theory,
    grad_var_theory,
    phi: nn.Module | None,
    weights: list[float],
) -> dict:
    """The chained backward map's mean, the free-probability sum's normalised variance (module docstring);
    `weights` from `weight_terms`."""
    index = {name: i for i, name in enumerate(names)}
    units = {name: span.units(name) for name in span.layers}
    k = min(units[span.start], units[span.end])
    g_end = grad_var_theory[index[span.end]]
    mean = grad_var_theory[index[span.start]] / g_end * units[span.start] / k
    partial = [
        grad_var_theory[index[name]] / g_end * units[name] / min(units[name], units[span.end])
        for name in span.layers
    ]
    nvar = math.nan
    if phi is not None:
        derivative = [float(act_var_theory[index[name]]) for name in span.layers[:-1]]
        nvar = sum(_derivative_nvar(phi, q) for q in derivative) + sum(weights)
    return {
        "kind": "mean_field",
        "sv2_mean": float(mean),
        "sv2_nvar": float(nvar),
        "partial": [float(p) for p in partial],
    }


def position_by_position(model: nn.Module, span: Stretch, phi: nn.Module, q: torch.Tensor) -> dict:
    chis, nvar = [], torch.zeros_like(q)
    for name in span.layers[1:]:
        module = model.get_submodule(name)
        weight_var, bias_var = parameter_variances(module)
        weight_var *= module.weight[0].numel()  # n·Var[w], n the fan-in
        second = meanfield.moment(phi, q, derivative=True).double()
        fourth = meanfield.moment(phi, q, power=4, derivative=True).double()
        chis.append(weight_var * second)
        nvar = nvar + fourth / second**2 - 1 + weight_nvar(module, span.shapes[name])
        q = weight_var * meanfield.moment(phi, q).double() + bias_var
    gains, gain = [torch.ones_like(q)], torch.ones_like(q)  # gains[i]: Π of χ after span.layers[-1 - i]
    for chi in reversed(chis):
        gain = gain * chi
        gains.append(gain)
    m1, m2 = float(gain.mean()), float((gain.square() * (1 + nvar)).mean())
    partial = [float(g.mean()) for g in reversed(gains)]
    return {"kind": "position", "sv2_mean": m1, "sv2_nvar": m2 / m1**2 - 1, "partial": partial}


def _derivative_nvar(phi, q: float) -> float:
    if not math.isfinite(q):
        return math.nan
    second = float(meanfield.moment(phi, q, derivative=True))
    fourth = float(meanfield.moment(phi, q, power=4, derivative=True))
    return fourth / second**2 - 1 if second > 0 else math.nan


def weight_nvar(module: nn.Module, shape: tuple[int, ...]) -> float:
    """ν of the layer's own Gram matrix: a Linear's from its singular values, a stride-1 conv's from the
    c_out × c_in blocks of its kernel's discrete Fourier transform on the output map (as if circular)."""
    weight = module.weight.detach().double().cpu()
    if isinstance(module, nn.Linear):
        squared = torch.linalg.svdvals(weight).square()
    elif isinstance(module, nn.Conv2d) and module.stride == (1, 1) and module.groups == 1:
        size = shape[1:]
        if any(s < k for s, k in zip(size, module.kernel_size, strict=True)):
            return math.nan
        spectrum = torch.fft.fft2(weight, s=size)  # (c_out, c_in, H, W): one block per frequency
        blocks = spectrum.permute(2, 3, 0, 1).reshape(-1, module.out_channels, module.in_channels)
        squared = torch.linalg.svdvals(blocks).square().flatten()
    else:
        return math.nan
    return float((squared**2).mean() / squared.mean() ** 2 - 1)
