"""An independent reference for mean-field signal-propagation theory, for checking the project's own.

What it is. For an elementwise activation phi, a wide layer with weight variance sigma_w^2/n and bias
variance sigma_b^2 maps the pre-activation variance q to (Poole et al. 2016; Schoenholz et al. 2017)

    L(q)    = sigma_w^2 * M(q) + sigma_b^2,      M(q)   = E[phi(sqrt(q) z)^2],   z ~ N(0, 1)
    chi1(q) = sigma_w^2 * M1(q),                 M1(q)  = E[phi'(sqrt(q) z)^2]
    C(q, c) = E[phi(u_a) phi(u_b)],  (u_a, u_b) centred Gaussian, variances q, correlation c.

Fixed points of L satisfy sigma_w^2 = w(q) := (q - sigma_b^2) / M(q) (q > sigma_b^2); one is stable iff
L'(q*) = sigma_w^2 M'(q*) < 1, i.e. where w(q) increases; turning points of w are saddle-node
bifurcations. A critical point is a fixed point with chi1 = 1: a root of w(q) M1(q) = 1, i.e. of
b(q) := q - M(q)/M1(q) = sigma_b^2, at sigma_w^2 = 1/M1(q). It is stable iff M'(q) < M1(q), which depends
on q alone; so the stable critical point can only appear or vanish where M'(q) = M1(q), and there it
sits on a saddle-node (w'(q) = 0 too).

Why it exists. The project computes the same quantities its own way; its tests compare the two. This
file is deliberately written from the mathematics alone, with the standard library's math, numpy and
scipy, and shares no code with the package, so that a mistake in one is not copied into the other.

How, and how accurate. Every expectation is one adaptive Gauss-Kronrod quadrature (scipy's QAGP) of
f(z) exp(-z^2/2) over |z| <= 13 (the weight beyond is below 1e-37), with break points at the
activation's kink or knee (z = 0) and at multiples of the activation's own scale 1/sqrt(q), so that the
integrals stay accurate from q = 1e-8 to q = 1e4. Checked against closed forms (ReLU, leaky ReLU, erf,
ELU) and, for tanh, the small-q series and large-q expansion: the one-dimensional moments agree to a
relative 1e-12 or better over that whole range. The cross moment is a quadrature over u_a of phi(u_a)
times the conditional mean of phi(u_b), itself a quadrature; it agrees with the arc-cosine and Williams
closed forms to 1e-11 of M(q) for c in [-1, 1]. Roots (fixed points, saddle-nodes, critical points)
are bracketed on a log grid of q (40 points a decade, 1e-8 to 1e4) and refined with brentq to a relative
1e-12 in q. Within a stretch where w(q) (or b(q)) is monotone there is at most one fixed point (or
critical point), so two roots close together are not lost between grid points.

Limits. Fixed points are searched on q in (0, 1e4] (plus q = 0 where sigma_b^2 = 0 and phi(0) = 0);
critical points on q in [1e-5, 1e4] plus q = 0, because below 1e-5 b(q) is smaller than the quadrature's
rounding (so for 0 < sigma_b^2 < ~1e-15 the tanh critical point, at q ~ (3 sigma_b^2 / 4)^(1/3) < 1e-5, is
not found). ReLU and leaky ReLU are positively homogeneous (M(q) = k q): they are handled in closed form.

Run it as a script to print the table of critical points and saddle-nodes.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache
from typing import NamedTuple

import numpy as np
from scipy import integrate, optimize

SQRT2 = math.sqrt(2.0)
SQRT_2PI = math.sqrt(2.0 * math.pi)
Z_MAX = 13.0  # exp(-13^2 / 2) ~ 2e-37: the Gaussian tail beyond is far below double precision.
Q_MIN, Q_MAX = 1e-8, 1e4  # the range of q searched for fixed points and turning points
CRIT_Q_MIN = 1e-5  # below it b(q) = q - M/M1 is lost in rounding (it is O(q^2) or O(q^3))
GRID_PER_DECADE = 40
EPSREL = 1e-13


# --- activations, written for one float at a time: quad calls them point by point, and the standard
# library's math is an order of magnitude faster than numpy on scalars.


def _tanh(x: float) -> float:
    return math.tanh(x)


def _dtanh(x: float) -> float:
    t = math.exp(-2.0 * abs(x))  # sech(x)^2 = 4 t / (1 + t)^2 without overflow or cancellation
    return 4.0 * t / (1.0 + t) ** 2


def _relu(x: float) -> float:
    return x if x > 0.0 else 0.0


def _drelu(x: float) -> float:
    return 1.0 if x > 0.0 else 0.0


def _leaky_relu(x: float, slope: float) -> float:
    return x if x > 0.0 else slope * x


def _dleaky_relu(x: float, slope: float) -> float:
    return 1.0 if x > 0.0 else slope


def _two_slopes(x: float, a: float, b: float) -> float:
    return a * x if x > 0.0 else b * x


def _dtwo_slopes(x: float, a: float, b: float) -> float:
    return a if x > 0.0 else b


def _two_slopes_squared(x: float, a: float, b: float) -> float:
    """phi^2 of the two-slope phi, as an activation of its own: its moments are phi's fourth ones."""
    return _two_slopes(x, a, b) ** 2


def _dtwo_slopes_squared(x: float, a: float, b: float) -> float:
    return 2.0 * _two_slopes(x, a, b) * _dtwo_slopes(x, a, b)


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / SQRT2)  # erfc keeps the relative accuracy of small tails


def _gelu(x: float) -> float:
    return x * _normal_cdf(x)


def _dgelu(x: float) -> float:
    return _normal_cdf(x) + x * math.exp(-0.5 * x * x) / SQRT_2PI


def _sigmoid(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _silu(x: float) -> float:
    return x * _sigmoid(x)


def _dsilu(x: float) -> float:
    s = _sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _elu(x: float, alpha: float) -> float:
    return x if x > 0.0 else alpha * math.expm1(x)


def _delu(x: float, alpha: float) -> float:
    return 1.0 if x > 0.0 else alpha * math.exp(x)


def _erf(x: float) -> float:
    return math.erf(x)


def _derf(x: float) -> float:
    return 2.0 / math.sqrt(math.pi) * math.exp(-x * x)


# name -> (phi, phi', default parameters). ReLU, leaky ReLU and two_slopes are positively homogeneous.
_ACTIVATIONS = {
    "tanh": (_tanh, _dtanh, {}),
    "relu": (_relu, _drelu, {}),
    "leaky_relu": (_leaky_relu, _dleaky_relu, {"slope": 0.01}),
    "gelu": (_gelu, _dgelu, {}),
    "silu": (_silu, _dsilu, {}),
    "elu": (_elu, _delu, {"alpha": 1.0}),
    "erf": (_erf, _derf, {}),
    "two_slopes": (_two_slopes, _dtwo_slopes, {"a": 1.0, "b": 0.0}),  # a x for x > 0, b x below
    "two_slopes_squared": (_two_slopes_squared, _dtwo_slopes_squared, {"a": 1.0, "b": 0.0}),
}
HOMOGENEOUS = ("relu", "leaky_relu", "two_slopes")
ACTIVATIONS = tuple(_ACTIVATIONS)


def _params(name: str, kw: dict) -> tuple:
    """The activation's parameters, defaults filled in, as a hashable key for the caches."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    defaults = _ACTIVATIONS[name][2]
    unknown = set(kw) - set(defaults)
    if unknown:
        raise TypeError(f"{name} takes {sorted(defaults) or 'no parameters'}, not {sorted(unknown)}")
    return tuple(sorted({**defaults, **kw}.items()))


def _functions(name: str, params: tuple):
    f, df, _ = _ACTIVATIONS[name]
    if not params:
        return f, df
    values = [v for _, v in params]
    return (lambda x: f(x, *values)), (lambda x: df(x, *values))


def phi(name: str, x: float, **kw) -> float:
    """The activation at one point, e.g. ``phi("leaky_relu", -1.0, slope=0.2)``."""
    return _functions(name, _params(name, kw))[0](x)


def dphi(name: str, x: float, **kw) -> float:
    """The activation's derivative at one point (the right-hand value 0 at a ReLU kink)."""
    return _functions(name, _params(name, kw))[1](x)


# --- Gaussian expectations


def _points(center: float, scales) -> list:
    """Break points for quad: the kink, multiples of each feature scale around it, and the Gaussian's own."""
    pts = {center, -1.0, 1.0, -3.0, 3.0, -6.0, 6.0}
    for s in scales:
        for k in (0.25, 1.0, 4.0, 16.0):
            pts.update((center - k * s, center + k * s))
    return sorted(p for p in pts if -Z_MAX < p < Z_MAX)


def _gauss(f, center: float = 0.0, scales=(), epsabs: float = 0.0, epsrel: float = EPSREL) -> float:
    """E[f(z)] for z ~ N(0, 1), by adaptive quadrature with break points at center and its scales."""
    pts = _points(center, scales)
    value, _ = integrate.quad(
        lambda z: f(z) * math.exp(-0.5 * z * z),
        -Z_MAX,
        Z_MAX,
        points=pts,
        epsabs=epsabs * SQRT_2PI,
        epsrel=epsrel,
        limit=200 + 4 * len(pts),
    )
    return value / SQRT_2PI


@cache
def _moment(kind: str, name: str, q: float, params: tuple) -> float:
    f, df = _functions(name, params)
    if q == 0.0:
        if kind == "slope":
            # M'(0+) = lim M(q)/q = (phi'(0+)^2 + phi'(0-)^2) / 2 when phi(0) = 0.
            return 0.5 * (df(1e-300) ** 2 + df(-1e-300) ** 2) if f(0.0) == 0.0 else math.nan
        return {"m": f(0.0) ** 2, "m1": df(0.0) ** 2, "m4": df(0.0) ** 4}[kind]
    sq = math.sqrt(q)
    integrand = {
        "m": lambda z: f(sq * z) ** 2,
        "m1": lambda z: df(sq * z) ** 2,
        "m4": lambda z: df(sq * z) ** 4,
        # d/dq E[phi(sqrt(q) z)^2] = E[phi phi'(sqrt(q) z) z] / sqrt(q): first derivatives only.
        "slope": lambda z: f(sq * z) * df(sq * z) * z,
    }[kind]
    value = _gauss(integrand, scales=(1.0 / sq,))
    return value / sq if kind == "slope" else value


def _check_q(q: float) -> float:
    q = float(q)
    if not q >= 0.0:
        raise ValueError(f"q must be >= 0, got {q}")
    return q


def second_moment(name: str, q: float, **kw) -> float:
    """M(q) = E[phi(sqrt(q) z)^2], z ~ N(0, 1)."""
    return _moment("m", name, _check_q(q), _params(name, kw))


def derivative_moment(name: str, q: float, **kw) -> float:
    """M1(q) = E[phi'(sqrt(q) z)^2]; chi1 = sigma_w^2 M1(q*)."""
    return _moment("m1", name, _check_q(q), _params(name, kw))


def fourth_derivative_moment(name: str, q: float, **kw) -> float:
    """E[phi'(sqrt(q) z)^4] (finite-width fluctuations of the Jacobian norm)."""
    return _moment("m4", name, _check_q(q), _params(name, kw))


def second_moment_slope(name: str, q: float, **kw) -> float:
    """M'(q) = dM/dq; L'(q) = sigma_w^2 M'(q). At q = 0, the limit from the right."""
    return _moment("slope", name, _check_q(q), _params(name, kw))


def length_map(name: str, q: float, weight_var: float, bias_var: float, **kw) -> float:
    """L(q) = sigma_w^2 M(q) + sigma_b^2: the next layer's pre-activation variance."""
    return weight_var * second_moment(name, q, **kw) + bias_var


def chi1(name: str, weight_var: float, q: float, **kw) -> float:
    """chi1 = sigma_w^2 M1(q): the mean squared singular value of a layer's Jacobian at variance q."""
    return weight_var * derivative_moment(name, q, **kw)


@lru_cache(maxsize=4096)
def _cross(name: str, q: float, c: float, params: tuple) -> float:
    f, _ = _functions(name, params)
    if q == 0.0:
        return f(0.0) ** 2
    if c == 1.0:
        return _moment("m", name, q, params)
    sq = math.sqrt(q)
    if c == -1.0:
        return _gauss(lambda z: f(sq * z) * f(-sq * z), scales=(1.0 / sq,))
    s = math.sqrt((1.0 - c) * (1.0 + c))
    size = math.sqrt(_moment("m", name, q, params))  # the typical |phi|, for the absolute tolerances

    def conditional_mean(z1: float) -> float:
        # E[phi(u_b) | u_a = sqrt(q) z1] with u_b = sqrt(q) (c z1 + s z2); its kink is at z2 = -c z1 / s.
        m = c * z1
        return _gauss(
            lambda z2: f(sq * (m + s * z2)),
            center=-m / s,
            scales=(1.0 / (sq * s),),
            epsabs=1e-12 * size,
            epsrel=1e-11,
        )

    # The conditional mean varies on the scale s/|c| (or 1/(sqrt(q)|c|)) in z1; phi on 1/sqrt(q).
    scales = (1.0 / sq,) if c == 0.0 else (1.0 / sq, s / abs(c), 1.0 / (sq * abs(c)))
    return _gauss(
        lambda z1: f(sq * z1) * conditional_mean(z1), scales=scales, epsabs=1e-12 * size**2, epsrel=1e-11
    )


def cross_moment(name: str, q: float, c: float, **kw) -> float:
    """C(q, c) = E[phi(u_a) phi(u_b)] for centred Gaussians of variance q and correlation c in [-1, 1]."""
    c = float(c)
    if not -1.0 <= c <= 1.0:
        raise ValueError(f"correlation must lie in [-1, 1], got {c}")
    return _cross(name, _check_q(q), c, _params(name, kw))


# --- fixed points, saddle-nodes, critical points


class FixedPoint(NamedTuple):
    q: float
    stable: bool


class SaddleNode(NamedTuple):
    weight_var: float
    q: float


class CriticalPoint(NamedTuple):
    weight_var: float
    q: float  # nan for the ReLU family at sigma_b^2 = 0, where every q is a (neutral) fixed point
    stable: bool


class Threshold(NamedTuple):
    bias_var: float  # the sigma_b^2 at which the critical point changes stability
    weight_var: float
    q: float
    stable_above: bool  # whether the critical point is stable for sigma_b^2 just above bias_var


def _grid(lo: float) -> np.ndarray:
    """The fixed log grid of q (shared by all calls, so the moments are cached), cut below at lo."""
    full = np.geomspace(Q_MIN, Q_MAX, 12 * GRID_PER_DECADE + 1)
    return np.concatenate([[lo], full[full > lo * (1 + 1e-12)]])


def _brentq(f, a: float, b: float) -> float:
    return optimize.brentq(f, a, b, xtol=1e-14 * a, rtol=1e-13, maxiter=200)


def _sign_changes(f, qs) -> list:
    """Each root of f on the grid qs, refined with brentq (exact zeros on the grid included once)."""
    values = [f(q) for q in qs]
    roots = []
    for i in range(len(qs) - 1):
        if values[i] == 0.0:
            roots.append(float(qs[i]))
        elif values[i] * values[i + 1] < 0.0:
            roots.append(_brentq(f, float(qs[i]), float(qs[i + 1])))
    return roots


def _homogeneous_gain(name: str, params: tuple) -> float:
    """k with M(q) = k q for the ReLU family (and M1 = k as well)."""
    return _moment("m", name, 1.0, params)


def _w(name: str, q: float, bias_var: float, params: tuple) -> float:
    return (q - bias_var) / _moment("m", name, q, params)


@cache
def _saddle_nodes(name: str, bias_var: float, params: tuple) -> tuple:
    if name in HOMOGENEOUS:
        return ()  # w(q) = (q - b) / (k q) is monotone

    def numerator(q: float) -> float:  # the sign of w'(q): M(q) - (q - b) M'(q)
        return _moment("m", name, q, params) - (q - bias_var) * _moment("slope", name, q, params)

    lo = bias_var if bias_var > 0.0 else Q_MIN
    return tuple(SaddleNode(_w(name, q, bias_var, params), q) for q in _sign_changes(numerator, _grid(lo)))


def saddle_nodes(name: str, bias_var: float, **kw) -> list:
    """Turning points of w(q) = (q - sigma_b^2)/M(q) on q in (sigma_b^2, 1e4]: [(sigma_w^2, q), ...].

    At each, a stable and an unstable fixed point are born or die together as sigma_w^2 passes it.
    """
    return list(_saddle_nodes(name, float(bias_var), _params(name, kw)))


def fixed_points(name: str, weight_var: float, bias_var: float, **kw) -> list:
    """Every fixed point q* of L on (0, 1e4], plus q* = 0 where it is one: [(q*, stable), ...] by q*.

    Between consecutive turning points w(q) is monotone, so each stretch holds at most one root of
    w(q) = sigma_w^2; each is refined with brentq. Stable means L'(q*) = sigma_w^2 M'(q*) < 1.
    For the ReLU family at sigma_b^2 = 0 and sigma_w^2 = 1/k every q is a neutral fixed point; only
    q = 0 is listed then.
    """
    params = _params(name, kw)
    weight_var, bias_var = float(weight_var), float(bias_var)
    f, _ = _functions(name, params)
    found = []
    if bias_var == 0.0 and f(0.0) == 0.0:
        found.append(FixedPoint(0.0, weight_var * _moment("slope", name, 0.0, params) < 1.0))
    if name in HOMOGENEOUS:
        k = _homogeneous_gain(name, params)
        if bias_var > 0.0 and weight_var * k < 1.0 and bias_var / (1.0 - weight_var * k) <= Q_MAX:
            found.append(FixedPoint(bias_var / (1.0 - weight_var * k), True))
        return found

    def excess(q: float) -> float:  # L(q) - q; its sign is that of sigma_w^2 - w(q)
        return weight_var * _moment("m", name, q, params) + bias_var - q

    lo = bias_var if bias_var > 0.0 else Q_MIN
    edges = [lo] + [s.q for s in _saddle_nodes(name, bias_var, params)] + [Q_MAX]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        ea, eb = excess(a), excess(b)
        if eb == 0.0:
            q = b
        elif ea * eb < 0.0:
            q = _brentq(excess, a, b)
        else:
            continue
        if q > 0.0 and not any(math.isclose(q, p.q, rel_tol=1e-9) for p in found):
            found.append(FixedPoint(q, weight_var * _moment("slope", name, q, params) < 1.0))
    return sorted(found)


@cache
def _critical_curve_pieces(name: str, params: tuple) -> tuple:
    """Break q into stretches on which b(q) = q - M/M1 is monotone: the grid ends and b's extrema."""

    def b(q: float) -> float:
        return q - _moment("m", name, q, params) / _moment("m1", name, q, params)

    qs = _grid(CRIT_Q_MIN)
    values = [b(q) for q in qs]
    edges = [float(qs[0])]
    for i in range(1, len(qs) - 1):
        if (values[i] - values[i - 1]) * (values[i + 1] - values[i]) < 0.0:
            sign = 1.0 if values[i] > values[i - 1] else -1.0  # a maximum: minimise -b
            res = optimize.minimize_scalar(
                lambda t, sign=sign: -sign * b(math.exp(t)),
                bounds=(math.log(qs[i - 1]), math.log(qs[i + 1])),
                method="bounded",
                options={"xatol": 1e-10},
            )
            edges.append(math.exp(res.x))
    edges.append(float(qs[-1]))
    return tuple(edges)


@cache
def _critical_points(name: str, bias_var: float, params: tuple) -> tuple:
    f, _ = _functions(name, params)
    found = []
    if name in HOMOGENEOUS:
        if bias_var == 0.0:
            found.append(CriticalPoint(1.0 / _homogeneous_gain(name, params), math.nan, True))
        return tuple(found)
    if bias_var == 0.0 and f(0.0) == 0.0:
        # q = 0 with chi1 = sigma_w^2 phi'(0)^2 = 1; stable iff w increases from q = 0 (sign of w' there).
        weight_var = 1.0 / _moment("m1", name, 0.0, params)
        q = Q_MIN
        rising = _moment("m", name, q, params) - q * _moment("slope", name, q, params) > 0.0
        found.append(CriticalPoint(weight_var, 0.0, rising))

    def offset(q: float) -> float:  # b(q) - sigma_b^2
        return q - _moment("m", name, q, params) / _moment("m1", name, q, params) - bias_var

    edges = [e for e in _critical_curve_pieces(name, params) if e > bias_var]
    if bias_var > 0.0:
        edges = [bias_var] + edges
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        oa, ob = offset(a), offset(b)
        if ob == 0.0:
            q = b
        elif oa * ob < 0.0:
            q = _brentq(offset, a, b)
        else:
            continue
        if any(math.isclose(q, p.q, rel_tol=1e-9) for p in found):
            continue
        m1, slope = _moment("m1", name, q, params), _moment("slope", name, q, params)
        found.append(CriticalPoint(1.0 / m1, q, slope < m1))
    return tuple(sorted(found, key=lambda p: p.q))


def critical_points(name: str, bias_var: float, **kw) -> list:
    """Every fixed point with chi1 = 1 at this sigma_b^2: [(sigma_w^2, q*, stable), ...] by q*.

    The roots of w(q) M1(q) = 1 (equivalently q - M(q)/M1(q) = sigma_b^2) at sigma_w^2 = 1/M1(q*),
    with q* = 0 included where sigma_b^2 = 0. Stable iff L'(q*) < 1, i.e. M'(q*) < M1(q*) (for q* = 0,
    iff w(q) increases from 0). The ReLU family has one only at sigma_b^2 = 0, sigma_w^2 = 1/k (He),
    where every q is a neutral fixed point: reported with q = nan and stable, being the edge of the
    stable region.
    """
    return list(_critical_points(name, float(bias_var), _params(name, kw)))


def stability_thresholds(name: str, **kw) -> list:
    """Where along the critical curve the critical point changes stability: [(sigma_b^2, sigma_w^2, q, ...)].

    These are the roots of M'(q) = M1(q) with b(q) = q - M/M1 >= 0; there the critical point meets a
    saddle-node. stable_above says whether it is stable for sigma_b^2 just above the threshold, judged
    by the critical point that continues the branch (b increasing or decreasing in q).
    """
    params = _params(name, kw)
    if name in HOMOGENEOUS:
        return []

    def gap(q: float) -> float:
        return _moment("m1", name, q, params) - _moment("slope", name, q, params)

    def b(q: float) -> float:
        return q - _moment("m", name, q, params) / _moment("m1", name, q, params)

    out = []
    for q in _sign_changes(gap, _grid(CRIT_Q_MIN)):
        bias_var = b(q)
        if bias_var < 0.0:
            continue
        h = 1e-4 * q
        stable_for_larger_q = gap(q * (1 + 1e-3)) > 0.0
        b_increasing = b(q + h) > b(q - h)
        out.append(
            Threshold(bias_var, 1.0 / _moment("m1", name, q, params), q, stable_for_larger_q == b_increasing)
        )
    return out


# --- the table


TABLE_ACTIVATIONS = (("tanh", {}), ("relu", {}), ("leaky_relu", {"slope": 0.2}), ("gelu", {}), ("silu", {}))
TABLE_BIAS_VARS = (0.0, 1e-4, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0)


def table(activations=TABLE_ACTIVATIONS, bias_vars=TABLE_BIAS_VARS) -> str:
    """Every critical point and saddle-node for each activation and sigma_b^2, as text."""
    lines = []
    for name, kw in activations:
        label = name + "".join(f" {k}={v}" for k, v in kw.items())
        lines.append(f"== {label}")
        for bias_var in bias_vars:
            crit = critical_points(name, bias_var, **kw)
            text = "; ".join(
                f"s2w={p.weight_var:.6f} q*={p.q:.6g} {'stable' if p.stable else 'unstable'}" for p in crit
            )
            lines.append(f"  s2b={bias_var:<6g} critical: {text or 'none'}")
            for s in saddle_nodes(name, bias_var, **kw):
                gain = chi1(name, s.weight_var, s.q, **kw)
                lines.append(f"  {'':12} saddle-node: s2w={s.weight_var:.6f} q={s.q:.6g} chi1={gain:.4f}")
        for t in stability_thresholds(name, **kw):
            lines.append(
                f"  stability changes at s2b={t.bias_var:.6f} (s2w={t.weight_var:.6f}, q={t.q:.6g}); "
                f"stable {'above' if t.stable_above else 'below'}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
