"""Mean-field theory of signal propagation at initialisation, for any elementwise activation φ.

A layer y = W φ(x) + b with Var[w] = σ²_w/n and Var[b] = σ²_b maps, at infinite width (Poole et al. 2016,
Schoenholz et al. 2017):
  length       q_l   = σ²_w E_z[φ(√q_{l−1} z)²] + σ²_b
  correlation  q^ab_l = σ²_w E[φ(u_a) φ(u_b)] + σ²_b,  (u_a, u_b) Gaussian with variances q, covariance q^ab
  gradient     χ     = σ²_w E_z[φ′(√q z)²]: how much the squared gradient grows per layer going down
For ReLU the first is He et al. 2015's ½ σ²_w q exactly, and the second Cho & Saul 2009's arc-cosine
kernel; the tests hold the quadrature to both. The expectations are Gauss–Hermite sums (numpy's
probabilists' nodes), evaluated with φ itself and φ′ by autograd, so a fork's activation needs no
formula. The activation's own kink (ReLU's at 0) costs no accuracy in the length map: the nodes are
symmetric, so half of them see the identity.

At a fixed point q* the correlation c = 1 is stable iff χ₁ = σ²_w E[φ′(√q* z)²] < 1 (ordered phase) and
unstable iff > 1 (chaotic); χ₁ = 1 is the critical line, where the depth scale of correlations,
ξ_c = −1/ln χ_c, diverges and very deep nets train (Schoenholz et al. 2017).

The finite-width band (Hanin & Rolnick 2018, generalised to any φ and to statistics averaged over a
batch, `batch_spread`): each of a layer's n units is an independent draw given the layer below, so the
layer's mean squared activation carries a relative variance of order 1/n, which adds over layers in log
space.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch

Activation = Callable[[torch.Tensor], torch.Tensor]
NODES = 200  # Gauss–Hermite points: tanh at q = 4 to 2e-8 (64 points: 1e-4), polynomials to degree 399


@lru_cache(maxsize=4)
def _gauss(points: int) -> tuple[torch.Tensor, torch.Tensor]:
    z, w = np.polynomial.hermite_e.hermegauss(points)  # ∫ f(z) exp(−z²/2) dz ≈ Σ w f(z)
    return torch.from_numpy(z), torch.from_numpy(w / math.sqrt(2 * math.pi))


def _tensor(values) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float64)


def _phi(phi: Activation, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return phi(x.clone())  # a copy: the model's own modules may work in place (ReLU(inplace=True))


def _derivative(phi: Activation, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(phi(x.clone()).sum(), x)
    return grad


def moment(phi: Activation, q, power: int = 2, derivative: bool = False) -> torch.Tensor:
    """E_z[f(√q z)^power] for each q (any shape), f = φ or φ′."""
    z, w = _gauss(NODES)
    q = _tensor(q)
    x = q.clamp(min=0).sqrt().unsqueeze(-1) * z  # (..., NODES)
    f = _derivative(phi, x) if derivative else _phi(phi, x)
    return (f**power * w).sum(-1)


@lru_cache(maxsize=4)
def _polar(radial: int, angular: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nodes of the 2-D standard normal in polar form: r from Gauss–Laguerre in t = r²/2 (exact for
    ReLU's r²), θ by the midpoint rule, which is spectrally accurate for smooth periodic integrands
    and O(1/angular²) across a kink, where a tensor grid of Gauss–Hermite nodes errs by percents.
    Small on purpose: the monitor evaluates it on every logging step."""
    t, w = np.polynomial.laguerre.laggauss(radial)
    theta = 2 * math.pi * (np.arange(angular) + 0.5) / angular
    r = torch.from_numpy(np.sqrt(2 * t)).view(-1, 1)
    weights = torch.from_numpy(w).view(-1, 1).expand(radial, angular) / angular
    return r * torch.from_numpy(np.cos(theta)), r * torch.from_numpy(np.sin(theta)), weights


def cross_moment(phi: Activation, q, qab, power: int = 1) -> torch.Tensor:
    """E[(φ(u_a) φ(u_b))^power], (u_a, u_b) zero-mean Gaussian, variances q, covariance qab (any shape)."""
    z1, z2, weights = _polar(24, 128)  # ReLU's arc-cosine kernel to 4e-4 (a Hermite grid: 1.6e-2)
    q, qab = torch.broadcast_tensors(_tensor(q), _tensor(qab))
    std = q.clamp(min=0).sqrt()
    c = torch.where(q > 0, qab / q.clamp(min=1e-300), torch.zeros_like(q)).clamp(-1, 1)
    ua = std[..., None, None] * z1
    ub = std[..., None, None] * (c[..., None, None] * z1 + (1 - c * c).sqrt()[..., None, None] * z2)
    return ((_phi(phi, ua) * _phi(phi, ub)) ** power * weights).sum((-2, -1))


def length_map(phi: Activation, q, weight_var: float, bias_var: float) -> torch.Tensor:
    return weight_var * moment(phi, q) + bias_var


def chi(phi: Activation, q, weight_var: float) -> torch.Tensor:
    return weight_var * moment(phi, q, derivative=True)


def batch_spread(phi: Activation, q, qab, batch: int) -> torch.Tensor:
    """n × the relative variance, over weight draws, of a layer's mean φ² averaged over a batch.

    One unit's batch average (1/B) Σ_a φ(u_a)² has relative variance [κ + (B − 1) K(c)] / B, with
    κ = Var[φ²]/E[φ²]² for one sample (5 for ReLU: Hanin & Rolnick 2018's exp(5 Σ 1/n_l)) and
    K(c) = Cov[φ(u_a)², φ(u_b)²]/E[φ²]² for two samples whose pre-activations correlate by c (0 at
    c = 0 for ReLU: independent samples average the fluctuation away; κ at c = 1). n units add 1/n.
    """
    second = moment(phi, q)
    kappa = moment(phi, q, power=4) / second**2 - 1
    pair = cross_moment(phi, q, qab, power=2) / second**2 - 1
    return torch.where(second > 0, (kappa + (batch - 1) * pair) / batch, 0.0)


def fixed_point(phi: Activation, weight_var: float, bias_var: float, iterations: int = 2000) -> float:
    """q* of the length map, iterated from q = 1 (which picks the fixed point that attracts it), then
    polished by Newton's method; inf where the map diverges (ReLU above σ²_w = 2). Near the critical line
    iterating alone converges slowly — the map's slope at q* tends to 1 as σ²_b → 0 (1 − 2q* for tanh) —
    and at σ²_b = 1e-8 it stops 0.1 % short of tanh's q*, which moves the critical σ²_w enough for
    χ₁²⁰⁰ to read 1.05 instead of 1."""
    q = 1.0
    for _ in range(iterations):
        following = float(length_map(phi, q, weight_var, bias_var))
        if not math.isfinite(following) or following > 1e12:
            return math.inf
        if abs(following - q) <= 1e-12 * max(1.0, q):
            return following
        q = following
    return _newton(lambda x: float(length_map(phi, x, weight_var, bias_var)) - x, q)


def _newton(excess, q: float, steps: int = 50) -> float:
    """The root of `excess` near q by Newton's method with a central-difference slope; q itself where
    the iteration leaves the positive half-line. Rounding can leave the last steps hopping between two
    neighbours of the root that never come within 1e-13 of each other (2.2e-13 apart at tanh's q* = 5e-4,
    σ²_w = 1.001, σ²_b = 0, measured), so it returns the iterate with the smallest excess it met."""
    start, best, smallest = q, q, math.inf
    for _ in range(steps):
        value = excess(q)
        if abs(value) < smallest:
            best, smallest = q, abs(value)
        h = 1e-6 * q
        slope = (excess(q + h) - excess(q - h)) / (2 * h)
        if slope == 0 or not math.isfinite(slope):
            return best
        following = q - value / slope
        if not following > 0:
            return start
        if abs(following - q) <= 1e-13 * q:
            return following
        q = following
    return best


def correlation_fixed_point(phi: Activation, weight_var: float, bias_var: float, q: float) -> float:
    c = 0.5
    for _ in range(2000):
        following = float(length_map_ab(phi, q, c * q, weight_var, bias_var)) / q
        if abs(following - c) < 1e-12:
            break
        c = following
    return min(c, 1.0)


def length_map_ab(phi: Activation, q, qab, weight_var: float, bias_var: float) -> torch.Tensor:
    return weight_var * cross_moment(phi, q, qab) + bias_var


def depth_scale(phi: Activation, weight_var: float, bias_var: float) -> float:
    """ξ_c = −1/ln χ_c, χ_c the slope of the correlation map at its stable fixed point c*
    (χ₁ in the ordered phase, where c* = 1); inf on the critical line."""
    q = fixed_point(phi, weight_var, bias_var)
    if not math.isfinite(q) or q <= 0:
        return math.nan
    chi1 = float(chi(phi, q, weight_var))
    if chi1 <= 1:
        slope = chi1
    else:  # chaotic: c* < 1, and χ_c = σ²_w E[φ′(u_a) φ′(u_b)] there
        c = correlation_fixed_point(phi, weight_var, bias_var, q)
        slope = weight_var * float(cross_moment(lambda x: _derivative(phi, x), q, c * q))
    return math.inf if slope == 1 else -1 / math.log(slope)


def critical_weight_var(phi: Activation, bias_var: float, low: float = 0.1, high: float = 20.0) -> float:
    """σ²_w on the critical line χ₁(σ²_w, σ²_b) = 1, by bisection; NaN where there is none in [low, high]."""

    def excess(weight_var: float) -> float:
        q = fixed_point(phi, weight_var, bias_var)
        return float(chi(phi, q, weight_var)) - 1 if math.isfinite(q) else math.inf

    lo, hi = excess(low), excess(high)
    if not (lo < 0 < hi):
        return math.nan
    for _ in range(60):
        middle = 0.5 * (low + high)
        if excess(middle) < 0:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def derivative(phi: Activation) -> Activation:
    """φ′ as an activation of its own, for the maps' cross moments of the derivative (χ_c)."""
    return lambda x: _derivative(phi, x)
