"""The fixed-point structure of the length map, for any activation: where a deep net's q settles, whether it
stays there, and where that point is critical (χ₁ = 1).

A fixed point of q ↦ σ²_w M(q) + σ²_b, M(q) = E_z[φ(√q z)²], satisfies σ²_w = w(q) = (q − σ²_b)/M(q). The
curve w(q) therefore holds every fixed point of every σ²_w at once: q* is stable (the map's slope
σ²_w M′(q*) < 1) exactly where w increases, and its turning points are saddle-node bifurcations, where a
stable and an unstable fixed point meet and vanish. Along the curve χ₁ = σ²_w E[φ′(√q z)²] becomes
g(q) = w(q) E[φ′(√q z)²], so the critical points are the roots of g(q) = 1, each stable or not by the
sign of w′ there. The critical line (Schoenholz et al. 2017) is the stable ones.

What this shows (tests/theory/test_theory_fixed_points.py holds it to an independent scipy computation):
tanh has one stable critical point at every σ²_b (σ²_w = 1.761 at σ²_b = 0.05). GELU and SiLU, with slope
½ at 0 and ReLU's shape far out, do not: at small σ²_b, w(q) rises to a saddle-node while χ₁ is still
about 0.9 there, falls (the unstable branch, where χ₁ crosses 1), then turns again near σ²_w = 2 into a
ReLU-like stable branch at large q, where χ₁ stays just above 1 and tends to it as q grows. Only from
σ²_b ≈ 0.17 (GELU) and 0.55 (SiLU) on does χ₁ = 1 fall on the stable branch. Iterating the map to
χ₁ = 1 without checking stability — as Hayou et al. 2019's code does — lands on the unstable branch,
a fixed point no net stays at. Positively homogeneous activations (ReLU, leaky ReLU) have M(q) = m q:
every q is a fixed point at σ²_w = 1/m when σ²_b = 0 (He et al. 2015's σ²_w = 2, marginally stable),
and for σ²_b > 0 the stable fixed point has χ₁ = 1 − σ²_b/q* < 1: critical only at σ²_b = 0.

w(q) is scanned on a log grid of q (60 points a decade up to TOP, where the quadrature still holds to
1e-9) and each sign change refined by Brent's method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from scipy.optimize import brentq

from template.theory.homogeneous import slopes
from template.theory.meanfield import Activation, chi, cross_moment, derivative, length_map, moment

TOP = 1e4  # largest q scanned (the activations' std 100): past it a fixed point is "the map diverges"
PER_DECADE = 60
NEAR_ZERO = 1e-6  # at σ²_b = 0, g − 1 is O(q²) below this and rounding decides its sign: q = 0 is exact


@dataclass(frozen=True)
class FixedPoint:
    q: float
    stable: bool
    chi1: float


@dataclass(frozen=True)
class CriticalPoint:
    weight_var: float
    q: float  # NaN for a homogeneous activation at σ²_b = 0, where every q is one
    stable: bool


@dataclass(frozen=True)
class SaddleNode:
    weight_var: float
    q: float
    chi1: float


@dataclass(frozen=True)
class Structure:
    """Every critical point and saddle-node of the length map at one σ²_b."""

    bias_var: float
    critical: list[CriticalPoint] = field(default_factory=list)
    saddle_nodes: list[SaddleNode] = field(default_factory=list)
    homogeneous: bool = False

    @property
    def stable_critical(self) -> CriticalPoint | None:
        return next((p for p in self.critical if p.stable), None)


def _slope_at_zero(phi: Activation) -> tuple[float, float]:
    """φ(0) and φ′(0)."""
    zero = torch.zeros(1, dtype=torch.float64)
    return float(phi(zero.clone())), float(derivative(phi)(zero))


def _homogeneous(phi: Activation) -> float | None:
    """m with M(q) = m q at every q — (a² + b²)/2 for φ's two slopes (`homogeneous`) — or None."""
    two_slopes = slopes(phi)
    return None if two_slopes is None else two_slopes.derivative_second


def _grid(low: float, high: float) -> torch.Tensor:
    decades = math.log10(high / low)
    return torch.logspace(
        math.log10(low), math.log10(high), max(2, round(decades * PER_DECADE)), dtype=torch.float64
    )


def _w(phi: Activation, q, bias_var: float):
    return (q - bias_var) / moment(phi, q)


def _w_slope(phi: Activation, q: float, bias_var: float) -> float:
    """dw/d ln q by a central difference."""
    h = 1e-5
    return float(_w(phi, q * math.exp(h), bias_var) - _w(phi, q * math.exp(-h), bias_var)) / (2 * h)


def _sign_changes(values: torch.Tensor) -> list[int]:
    """i with values[i] and values[i + 1] of opposite strict signs."""
    return torch.nonzero(values[:-1] * values[1:] < 0).flatten().tolist()


def structure(phi: Activation, bias_var: float) -> Structure:
    """Critical points (by increasing q) and saddle-nodes of the length map at σ²_b = bias_var."""
    m = _homogeneous(phi)
    if m is not None:
        # E[φ′²] = m as well, at every q
        critical = [CriticalPoint(1 / m, math.nan, True)] if bias_var == 0 else []
        return Structure(bias_var, critical, [], homogeneous=True)
    low = bias_var * (1 + 1e-9) if bias_var > 0 else NEAR_ZERO
    q = _grid(low, TOP)
    w = _w(phi, q, bias_var)
    g = w * moment(phi, q, derivative=True)
    critical = []
    if bias_var == 0:
        value, slope = _slope_at_zero(phi)
        if value == 0 and slope != 0:  # q = 0 is a fixed point of every σ²_w, critical at 1/φ′(0)²
            critical.append(CriticalPoint(1 / slope**2, 0.0, bool(w[1] > w[0])))
    g_of = lambda x: float(_w(phi, x, bias_var) * moment(phi, x, derivative=True)) - 1  # noqa: E731
    for i in _sign_changes(g - 1):
        root = brentq(g_of, float(q[i]), float(q[i + 1]), xtol=1e-14, rtol=1e-13)
        critical.append(
            CriticalPoint(float(_w(phi, root, bias_var)), root, _w_slope(phi, root, bias_var) > 0)
        )
    saddles = []
    slope_of = lambda x: _w_slope(phi, x, bias_var)  # noqa: E731
    for i in _sign_changes(w[1:] - w[:-1]):  # Δw changes sign between q[i] and q[i + 2]
        ends = float(q[i]), float(q[i + 2])
        bracketed = slope_of(ends[0]) * slope_of(ends[1]) < 0  # a difference of 1e-5 can round either way
        turn = brentq(slope_of, *ends, xtol=1e-14, rtol=1e-12) if bracketed else float(q[i + 1])
        weight_var = float(_w(phi, turn, bias_var))
        saddles.append(SaddleNode(weight_var, turn, float(chi(phi, turn, weight_var))))
    return Structure(bias_var, critical, saddles)


def fixed_points(phi: Activation, weight_var: float, bias_var: float) -> list[FixedPoint]:
    """Every fixed point in [0, TOP·max(1, σ²_w + σ²_b)], by increasing q, with its stability and χ₁."""
    m = _homogeneous(phi)
    if m is not None:
        slope = weight_var * m  # the map is the line q ↦ slope·q + σ²_b
        if slope < 1:
            q = bias_var / (1 - slope)
            return [FixedPoint(q, True, slope)]  # χ₁ = σ²_w E[φ′²] = σ²_w m, the same at every q
        return []  # slope 1 and σ²_b = 0: every q is one (`fixed_point` returns its start)
    excess = lambda x: float(length_map(phi, x, weight_var, bias_var)) - x  # noqa: E731
    found = []
    value, slope = _slope_at_zero(phi)
    if bias_var == 0 and value == 0:
        found.append(0.0)
    low = bias_var if bias_var > 0 else 1e-12
    q = _grid(low, TOP * max(1.0, weight_var + bias_var))
    for i in _sign_changes(length_map(phi, q, weight_var, bias_var) - q):
        found.append(brentq(excess, float(q[i]), float(q[i + 1]), xtol=1e-300, rtol=1e-15))
    points = []
    for root in found:
        if root == 0:
            map_slope = weight_var * slope**2
        else:
            h = 1e-6 * root
            map_slope = float(
                length_map(phi, root + h, weight_var, 0) - length_map(phi, root - h, weight_var, 0)
            ) / (2 * h)
        points.append(FixedPoint(root, map_slope < 1, float(chi(phi, root, weight_var))))
    return points


def fixed_point(phi: Activation, weight_var: float, bias_var: float, start: float = 1.0) -> float:
    """The fixed point that iterating the map from q = `start` reaches; inf where it diverges. The map
    is increasing (M′ > 0 for every activation here), so the iterates move monotonically towards the
    nearest fixed point on the side of L(start) − start."""
    excess = float(length_map(phi, start, weight_var, bias_var)) - start
    if abs(excess) <= 1e-15 * max(start, 1.0):
        return start
    roots = [p.q for p in fixed_points(phi, weight_var, bias_var)]
    if excess > 0:
        return next((q for q in roots if q > start), math.inf)
    return next((q for q in reversed(roots) if q < start), 0.0)


def critical_weight_var(phi: Activation, bias_var: float) -> float:
    """σ²_w of the stable critical point at σ²_b = bias_var; NaN where there is none (`refusal` says why)."""
    point = structure(phi, bias_var).stable_critical
    return point.weight_var if point else math.nan


def stable_from(phi: Activation, high: float = 4.0) -> float | None:
    """The least σ²_b in [0, high] from which a stable critical point exists (to 1e-4), or None."""
    has = lambda b: structure(phi, b).stable_critical is not None  # noqa: E731
    if has(0.0) or not has(high):
        return 0.0 if has(0.0) else None
    low = 0.0
    while high - low > 1e-4:
        middle = 0.5 * (low + high)
        low, high = (low, middle) if has(middle) else (middle, high)
    return high


def refusal(phi: Activation, bias_var: float) -> str:
    """Why φ has no stable critical point at σ²_b = bias_var, in one sentence."""
    found = structure(phi, bias_var)
    if found.homogeneous:
        critical = structure(phi, 0.0).critical[0].weight_var
        return (
            f"positively homogeneous, its stable fixed point has χ₁ = 1 − σ²_b/q* < 1 at every σ²_b > 0: "
            f"critical only at bias_var=0 (σ²_w = {critical:.4g})"
        )
    unstable = [p for p in found.critical if not p.stable]
    parts = []
    if unstable:
        p = unstable[0]
        parts.append(f"χ₁ = 1 only on the unstable branch (σ²_w={p.weight_var:.4g}, q={p.q:.3g})")
    if found.saddle_nodes:
        s = found.saddle_nodes[0]
        parts.append(
            f"its stable fixed point dies in a saddle-node at σ²_w={s.weight_var:.4g} with χ₁={s.chi1:.3f}"
        )
    threshold = stable_from(phi)
    where = (
        f"a stable critical point exists from bias_var ≈ {threshold:.3g} on"
        if threshold is not None and threshold > bias_var
        else "no bias_var in [0, 4] has a stable critical point"
    )
    return "; ".join([*parts, where])


def correlation_fixed_point(phi: Activation, weight_var: float, bias_var: float, q: float) -> float:
    c = 0.5
    for _ in range(2000):
        following = float(weight_var * cross_moment(phi, q, c * q) + bias_var) / q
        if abs(following - c) < 1e-12:
            break
        c = following
    return min(c, 1.0)


def depth_scale(phi: Activation, weight_var: float, bias_var: float) -> float:
    """ξ_c = −1/ln χ_c at the fixed point reached from q = 1, χ_c the slope of the correlation map at its
    stable fixed point c* (χ₁ in the ordered phase, where c* = 1); inf on the critical line."""
    q = fixed_point(phi, weight_var, bias_var)
    if not math.isfinite(q) or q <= 0:
        return math.nan
    chi1 = float(chi(phi, q, weight_var))
    if abs(chi1 - 1) <= 1e-12:  # on the line, up to rounding: c* = 1 would take ~1/ε iterations to reach
        return math.inf
    if chi1 < 1:
        slope = chi1
    else:  # chaotic: c* < 1, and χ_c = σ²_w E[φ′(u_a) φ′(u_b)] there
        c = correlation_fixed_point(phi, weight_var, bias_var, q)
        slope = weight_var * float(cross_moment(derivative(phi), q, c * q))
    return math.inf if slope == 1 else -1 / math.log(slope)
