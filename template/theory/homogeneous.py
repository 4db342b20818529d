"""Positively homogeneous activations — φ(x) = a·x for x > 0 and b·x for x < 0: ReLU (a = 1, b = 0),
leaky ReLU (1, α), |x| (1, −1), any fork's two-slope φ — whose every moment the maps take is known in
closed form, so the monitor's logging step runs no quadrature for them.

With u_a, u_b zero-mean Gaussians of variance q and correlation c = cos θ, Cho & Saul 2009's arc-cosine
kernels give E[relu(u_a)ⁿ relu(u_b)ⁿ] = qⁿ Jₙ(θ)/(2π), with
  J₁(θ) = sin θ + (π − θ) cos θ,    J₂(θ) = 3 sin θ cos θ + (π − θ)(1 + 2 cos² θ),
and φ(x) = a relu(x) − b relu(−x) splits every moment into those kernels (relu(−u_b) correlates with
relu(u_a) by −c, hence the J(π − θ) terms; relu(x) relu(−x) = 0 drops the cross terms of φ²):
  E[φ(√q z)²] = (a² + b²) q/2            E[φ⁴] = 3 (a⁴ + b⁴) q²/2            E[φ′²] = (a² + b²)/2
  E[φ(u_a) φ(u_b)]   = [(a² + b²) J₁(θ) − 2ab J₁(π − θ)] q/(2π)
  E[φ(u_a)² φ(u_b)²] = [(a⁴ + b⁴) J₂(θ) + 2a²b² J₂(π − θ)] q²/(2π)
Linear in q (E[φ′²] constant), so a unit's own q averages over the units to the mean's moment and the
length map carries a relative deviation of q unchanged. tests/theory/test_theory_homogeneous.py holds
every line to scipy's quadrature, on six members of the family.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

# where `slopes` looks: both signs, 1e-8 to 1e8 (ReLU6's clip at 6 and a kink anywhere a Gaussian of
# variance up to 1e14 has mass are seen), plus 0
_MAGNITUDES = torch.logspace(-8, 8, 97, dtype=torch.float64)
_PROBE = torch.cat([-_MAGNITUDES.flip(0), torch.zeros(1, dtype=torch.float64), _MAGNITUDES])
_RELATIVE = 1e-12  # how closely φ must follow its two slopes on the probe: rounding, not a bend


@dataclass(frozen=True)
class TwoSlopes:
    """φ(x) = a·x for x > 0, b·x for x < 0, and its moments (formulas: the module's docstring)."""

    a: float
    b: float

    def second(self, q: torch.Tensor) -> torch.Tensor:
        return (self.a**2 + self.b**2) / 2 * q

    def fourth(self, q: torch.Tensor) -> torch.Tensor:
        return 1.5 * (self.a**4 + self.b**4) * q * q

    @property
    def derivative_second(self) -> float:
        return (self.a**2 + self.b**2) / 2

    def cross(self, q: torch.Tensor, qab: torch.Tensor) -> torch.Tensor:
        theta = _angle(q, qab)
        kernel = (self.a**2 + self.b**2) * _j1(theta)
        if self.a * self.b != 0:  # ReLU's b = 0 has no opposite term: the monitor's logging step skips it
            kernel = kernel - 2 * self.a * self.b * _j1(math.pi - theta)
        return kernel * q / (2 * math.pi)

    def cross_squared(self, q: torch.Tensor, qab: torch.Tensor) -> torch.Tensor:
        theta = _angle(q, qab)
        kernel = (self.a**4 + self.b**4) * _j2(theta)
        if self.a * self.b != 0:
            kernel = kernel + 2 * self.a**2 * self.b**2 * _j2(math.pi - theta)
        return kernel * q * q / (2 * math.pi)


def slopes(phi: Callable[[torch.Tensor], torch.Tensor]) -> TwoSlopes | None:
    """φ's two slopes if φ is positively homogeneous — φ(x) = φ(1)·x for x > 0 and −φ(−1)·x for x < 0,
    to rounding, on a probe from 1e-8 to 1e8 of either sign and at 0 — else None. Smooth activations
    (tanh, GELU, SiLU, ELU, softplus) and clipped ones (ReLU6, hardtanh) fail it."""
    with torch.no_grad():
        values = phi(_PROBE.clone())  # a copy: a module may work in place (ReLU(inplace=True))
        one = torch.ones(1, dtype=torch.float64)
        a, b = float(phi(one.clone())), -float(phi(-one))
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    expected = torch.where(_PROBE > 0, a * _PROBE, b * _PROBE)
    if values.shape != expected.shape or not torch.allclose(values, expected, rtol=_RELATIVE, atol=0.0):
        return None
    return TwoSlopes(a, b)


def _angle(q: torch.Tensor, qab: torch.Tensor) -> torch.Tensor:
    """θ = arccos(qab/q), with c clamped to [−1, 1] (rounding) and 0 where q is 0."""
    c = torch.where(q > 0, qab / q.clamp(min=1e-300), torch.zeros_like(q))
    return torch.arccos(c.clamp(-1, 1))


def _j1(theta: torch.Tensor) -> torch.Tensor:
    return torch.sin(theta) + (math.pi - theta) * torch.cos(theta)


def _j2(theta: torch.Tensor) -> torch.Tensor:
    cos = torch.cos(theta)
    return 3 * torch.sin(theta) * cos + (math.pi - theta) * (1 + 2 * cos * cos)
