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
ξ_c = −1/ln χ_c, diverges and very deep nets train (Schoenholz et al. 2017). Which fixed points exist,
which are stable, and where χ₁ = 1 on them: `fixed_points`.

The finite-width band (Hanin & Rolnick 2018, generalised to any φ and to statistics averaged over a
batch, `batch_spread`): each of a layer's n units is an independent draw given the layer below, so the
layer's mean squared activation carries a relative variance of order 1/n, which adds over layers in log
space.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch

Activation = Callable[[torch.Tensor], torch.Tensor]
TAIL = (
    12.0  # |z| beyond 12 carries e^{-72} of the Gaussian's mass: below float64's resolution of any sum here
)


@lru_cache(maxsize=8)
def _legendre(order: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, w = np.polynomial.legendre.leggauss(order)  # on [−1, 1]
    return torch.from_numpy((x + 1) / 2), torch.from_numpy(w / 2)  # on [0, 1]


def _panels(edges: torch.Tensor, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Legendre nodes and weights on each panel between edges (..., P+1) -> (..., P·order)."""
    x, w = _legendre(order)
    low, width = edges[..., :-1, None], (edges[..., 1:] - edges[..., :-1])[..., None]
    return (low + width * x).flatten(-2), (width * w).flatten(-2)


def _half_line(q: torch.Tensor, panels: int, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes on [0, TAIL] for the Gaussian variable behind φ(√q z): a first panel [0, h], then panels
    growing geometrically to TAIL. h = ½ min(1, 1/√q) puts the first panel over |√q z| ≤ ½, where an
    activation bends (tanh saturates within |x| ≲ 2, GELU and SiLU turn within |x| ≲ 3), whatever q is —
    a fixed set of Gauss–Hermite nodes, spaced 0.16 apart near 0, cannot see tanh(10 z) bend (its
    E[φ′²] at q = 100 came out 59 % low with 200 nodes). A kink at 0 sits on a panel edge."""
    h = 0.5 / q.clamp(min=1).sqrt()
    ratio = (TAIL / h) ** (1 / (panels - 1))
    edges = torch.cat(
        [torch.zeros_like(h)[..., None], h[..., None] * ratio[..., None] ** torch.arange(panels)], -1
    )
    return _panels(edges, order)


def _gauss(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z and weights with Σ w f(z) ≈ E[f(z)], z ~ N(0, 1), for each q (..., 200): 10 panels of 10 nodes
    on each half-line. Against scipy's adaptive quadrature (tests/theory/test_theory_meanfield.py):
    tanh, GELU, SiLU and ReLU to 1e-12 relative up to q = 1e3 and 1e-9 at q = 1e4."""
    z, w = _half_line(q, panels=10, order=10)
    w = w * torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return torch.cat([-z.flip(-1), z], -1), torch.cat([w.flip(-1), w], -1)


def _tensor(values) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float64)


def _phi(phi: Activation, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return phi(x.clone())  # a copy: the model's own modules may work in place (ReLU(inplace=True))


def _derivative(phi: Activation, x: torch.Tensor) -> torch.Tensor:
    with _autograd():
        x = x.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(phi(x.clone()).sum(), x)
    return grad


@contextlib.contextmanager
def _autograd():
    """Autograd on, also inside the inference mode the monitor's theory runs in (`propagation`), where it
    records nothing and a tensor made there cannot require a gradient: the caller clones in here."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def moment(phi: Activation, q, power: int = 2, derivative: bool = False) -> torch.Tensor:
    """E_z[f(√q z)^power] for each q (any shape), f = φ or φ′."""
    q = _tensor(q).clamp(min=0)
    z, w = _gauss(q)
    x = q.sqrt().unsqueeze(-1) * z  # (..., 200)
    f = _derivative(phi, x) if derivative else _phi(phi, x)
    return (f**power * w).sum(-1)


def _polar(q: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nodes (z1, z2) and weights of the 2-D standard normal in polar form, for each (q, c) (..., 64, 64).
    r: the half-line's geometric panels (8 × 8 nodes, weight r e^{−r²/2}). θ: Gauss–Legendre (16 nodes) on
    the four arcs between the angles where u_a = √q z1 or u_b = √q (c z1 + √(1−c²) z2) changes sign, so
    that a kink of φ at 0 (ReLU's) falls on an arc's end at every c — a midpoint rule across it erred by
    4.5e-3 at c = −0.9. Small on purpose: the monitor evaluates it on every logging step. Against closed
    forms and scipy (tests/theory/test_theory_meanfield.py), over c ∈ [−1, 1] and relative to E[φ²]:
    ReLU to 1e-8 at any q; GELU and SiLU to 2e-9 up to q = 4 and 3e-7 at q = 30; tanh, whose bend is
    sharpest, to 2e-7 up to q = 4 and 3e-5 at q = 30 (worst at c = ±1)."""
    r, radial = _half_line(q, panels=8, order=8)  # (..., 64)
    radial = radial * r * torch.exp(-r * r / 2)
    alpha = torch.arccos(c)
    half = torch.full_like(c, math.pi / 2)
    kinks = torch.stack([-half, half, alpha - half, alpha + half], -1)
    kinks = (torch.remainder(kinks + math.pi, 2 * math.pi) - math.pi).sort(-1).values
    theta, angular = _panels(torch.cat([kinks, kinks[..., :1] + 2 * math.pi], -1), order=16)  # (..., 64)
    r, theta = r[..., :, None], theta[..., None, :]
    weights = radial[..., :, None] * angular[..., None, :] / (2 * math.pi)
    return r * torch.cos(theta), r * torch.sin(theta), weights


def cross_moment(phi: Activation, q, qab, power: int = 1) -> torch.Tensor:
    """E[(φ(u_a) φ(u_b))^power], (u_a, u_b) zero-mean Gaussian, variances q, covariance qab (any shape)."""
    q, qab = torch.broadcast_tensors(_tensor(q), _tensor(qab))
    q = q.clamp(min=0)
    c = torch.where(q > 0, qab / q.clamp(min=1e-300), torch.zeros_like(q)).clamp(-1, 1)
    z1, z2, weights = _polar(q, c)
    std, c = q.sqrt()[..., None, None], c[..., None, None]
    ua = std * z1
    ub = std * (c * z1 + (1 - c * c).sqrt() * z2)
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
    return spread(moment(phi, q), moment(phi, q, power=4), cross_moment(phi, q, qab, power=2), batch)


def spread(second: torch.Tensor, fourth: torch.Tensor, cross_fourth: torch.Tensor, batch: int):
    """`batch_spread` from E[φ²], E[φ⁴] and E[φ(u_a)² φ(u_b)²], however they were computed."""
    kappa = fourth / second**2 - 1
    pair = cross_fourth / second**2 - 1
    return torch.where(second > 0, (kappa + (batch - 1) * pair) / batch, 0.0)


def length_map_ab(phi: Activation, q, qab, weight_var: float, bias_var: float) -> torch.Tensor:
    return weight_var * cross_moment(phi, q, qab) + bias_var


def derivative(phi: Activation) -> Activation:
    """φ′ as an activation of its own, for the maps' cross moments of the derivative (χ_c)."""
    return lambda x: _derivative(phi, x)


def _times_slope(phi: Activation) -> Activation:
    """x ↦ x φ(x) φ′(x), φ′ by autograd: the integrand of the length map's log-slope."""

    def integrand(x: torch.Tensor) -> torch.Tensor:
        with _autograd():
            x = x.detach().clone().requires_grad_(True)
            value = phi(x.clone())  # a copy: the model's own modules may work in place
            (slope,) = torch.autograd.grad(value.sum(), x)
        return x.detach() * value.detach() * slope

    return integrand


def stretch_moment(phi: Activation, q) -> torch.Tensor:
    """q · d/dq E_z[φ(√q z)²] = E[x φ(x) φ′(x)], x = √q z, for each q (any shape).

    Differentiating under the expectation, d/dq E[φ(√q z)²] = E[φ(√q z) φ′(√q z) z]/√q; times q that
    is E[x φ(x) φ′(x)], one more quadrature of the kind `moment` does. For ReLU x φ φ′ = φ², so the
    two moments are equal and the length map's log-slope is exactly 1 (tests/theory/
    test_theory_meanfield_slope.py holds both to a central difference of `moment` in ln q)."""
    return moment(_times_slope(phi), q, power=1)


def log_slope(phi: Activation, q, weight_var: float, bias_var: float) -> torch.Tensor:
    """s = d ln q_{l+1} / d ln q_l of the length map at q (any shape): σ²_w E[x φ φ′] / (σ²_w E[φ²] + σ²_b).

    How much the map stretches a relative change of q: a deviation δ of ln q_l (one draw of the weights
    at finite width) reaches layer l + 1 as s δ. ReLU without biases: 1 exactly, so a deviation is
    carried unchanged; GELU and SiLU in their ordered phase (σ²_w = 2, σ²_b = 0): above 1 where q is of
    order one, so the deviations of the first layers grow with depth (docs/theory.md: "The band");
    tanh: below 1, it saturates. 0 where the map is 0."""
    length = weight_var * moment(phi, q) + bias_var
    stretched = weight_var * stretch_moment(phi, q)
    return torch.where(length > 0, stretched / length.clamp(min=1e-300), 0.0)
