"""The mean-field maps' quadrature against closed forms: ReLU (He et al. 2015; Cho & Saul 2009's arc-cosine
kernel), erf (Williams 1997), and tanh's critical line (Schoenholz et al. 2017) against scipy."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from template.theory import meanfield
from tests.helpers import meanfield_reference as reference

relu = torch.relu


def erf_of(a: float):
    return lambda x: torch.erf(a * x)


@pytest.mark.parametrize("q", [1e-3, 0.7, 3.0, 250.0])
def test_relu_length_map_is_hes_half_exactly(q):
    assert float(meanfield.moment(relu, q)) == pytest.approx(q / 2, rel=1e-12)
    assert float(meanfield.length_map(relu, q, 2.0, 0.1)) == pytest.approx(q + 0.1, rel=1e-12)
    assert float(meanfield.chi(relu, q, 2.0)) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_length_map_is_half_of_one_plus_slope_squared(slope):
    leaky = lambda x: torch.nn.functional.leaky_relu(x, slope)  # noqa: E731
    assert float(meanfield.moment(leaky, 2.0)) == pytest.approx(0.5 * (1 + slope**2) * 2.0, rel=1e-12)


@pytest.mark.parametrize("q", [1e-4, 1.7, 300.0])
@pytest.mark.parametrize("c", [-1.0, -0.999, -0.99, -0.9, -0.5, 0.0, 0.3, 0.8, 0.99, 0.999, 1.0])
def test_relu_correlation_map_is_the_arc_cosine_kernel_over_all_of_c(q, c):
    """To 1e-8 of E[φ²] = q/2 at every c: the polar rule's arcs end where u_a or u_b changes sign. The
    midpoint rule it replaced erred by 4.5e-3 at c = −0.9 (and was tested only from c = −0.5 up)."""
    theta = math.acos(c)
    closed = q / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * math.cos(theta))
    assert float(meanfield.cross_moment(relu, q, c * q)) == pytest.approx(closed, abs=1e-8 * q / 2)


SMOOTH_ACCURACY = [("tanh", 0.5, 1e-9), ("tanh", 4.0, 2e-7), ("tanh", 30.0, 3e-5),
                   ("gelu", 4.0, 2e-9), ("gelu", 30.0, 3e-7), ("silu", 30.0, 3e-7)]  # fmt: skip


@pytest.mark.parametrize("name, q, accuracy", SMOOTH_ACCURACY)
def test_smooth_correlation_maps_match_the_independent_quadrature_over_all_of_c(name, q, accuracy):
    """The accuracy meanfield's docstring states, relative to E[φ²], against scipy's nested adaptive
    quadrature (meanfield_reference, to ~1e-15). It is worst at c = ±1 and grows with q: tanh(√q u) bends
    within a few hundredths of a radian of each arc's end (tanh at q = 4 errs 1.1e-7, at q = 30 2.4e-5)."""
    phi = SCIPY_ACTIVATIONS[name][0]
    scale = float(meanfield.moment(phi, q))
    for c in (-1.0, -0.9, 0.0, 0.9, 1.0):
        expected = reference.cross_moment(name, q, c)
        ours = float(meanfield.cross_moment(phi, q, c * q))
        assert ours == pytest.approx(expected, abs=accuracy * scale), c


@pytest.mark.parametrize(("a", "q", "c"), [(1.0, 0.5, 0.2), (0.5, 2.0, 0.9), (2.0, 0.1, -0.3)])
def test_erf_maps_match_williams_closed_forms(a, q, c):
    length = 2 / math.pi * math.asin(2 * a * a * q / (1 + 2 * a * a * q))
    cross = 2 / math.pi * math.asin(2 * a * a * c * q / (1 + 2 * a * a * q))
    assert float(meanfield.moment(erf_of(a), q)) == pytest.approx(length, rel=1e-9)
    assert float(meanfield.cross_moment(erf_of(a), q, c * q)) == pytest.approx(cross, rel=1e-6)
    slope = 4 * a * a / math.pi / math.sqrt(1 + 4 * a * a * q)  # E[φ'²] of erf(a x)
    assert float(meanfield.moment(erf_of(a), q, derivative=True)) == pytest.approx(slope, rel=1e-9)


def test_batch_spread_is_hanin_rolnicks_five_for_one_relu_sample_and_averages_away_for_independent_ones():
    assert float(meanfield.batch_spread(relu, 1.3, 1.3, batch=1)) == pytest.approx(5.0, rel=1e-9)
    assert float(meanfield.batch_spread(relu, 1.3, 0.0, batch=100)) == pytest.approx(5.0 / 100, rel=1e-6)
    assert float(meanfield.batch_spread(relu, 1.3, 1.3, batch=100)) == pytest.approx(5.0, rel=1e-9)


def _gelu(x):
    return x * stats.norm.cdf(x)


def _gelu_slope(x):
    return stats.norm.cdf(x) + x * stats.norm.pdf(x)


def _silu_slope(x):
    return special.expit(x) * (1 + x * special.expit(-x))


SCIPY_ACTIVATIONS = {  # name: (the module's function, φ and φ′ written apart in numpy/scipy)
    "tanh": (torch.tanh, np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "gelu": (torch.nn.functional.gelu, _gelu, _gelu_slope),
    "silu": (torch.nn.functional.silu, lambda x: x * special.expit(x), _silu_slope),
    "relu": (relu, lambda x: np.maximum(x, 0.0), lambda x: float(x > 0)),
}


def _scipy_gaussian_mean(f, q: float) -> float:
    """E[f(√q z)] by scipy's adaptive quadrature, on panels that split at the kink (0) and at |√q z| =
    ½, 1, 2, 4, 8, where the activations bend, so that a narrow bend at large q is not stepped over."""
    std = math.sqrt(q)
    edges = sorted({0.0, 12.0, *(t / std for t in (0.5, 1, 2, 4, 8) if t / std < 12)})
    total = 0.0
    for sign in (1, -1):
        integrand = lambda z, sign=sign: f(sign * std * z) * stats.norm.pdf(z)  # noqa: E731
        for a, b in zip(edges[:-1], edges[1:], strict=False):
            total += integrate.quad(integrand, a, b, epsabs=0, epsrel=1e-13, limit=200)[0]
    return total


@pytest.mark.filterwarnings("ignore:The occurrence of roundoff")  # scipy, at tanh(100 z)² ≈ 1
@pytest.mark.parametrize("name", SCIPY_ACTIVATIONS)
@pytest.mark.parametrize("q", [1e-6, 0.01, 1.0, 30.0, 100.0, 1e3, 1e4])
def test_moments_match_scipy_from_tiny_to_large_q(name, q):
    """The moments to 1e-9 relative over ten decades of q: 200 Gauss–Hermite nodes, the previous rule,
    had tanh's E[φ′²] 7.6 % low at q = 30 and 59 % low at q = 100."""
    phi, value, slope = SCIPY_ACTIVATIONS[name]
    assert float(meanfield.moment(phi, q)) == pytest.approx(
        _scipy_gaussian_mean(lambda x: value(x) ** 2, q), rel=1e-9
    )
    expected = _scipy_gaussian_mean(lambda x: slope(x) ** 2, q)
    assert float(meanfield.moment(phi, q, derivative=True)) == pytest.approx(expected, rel=1e-9)
    expected = _scipy_gaussian_mean(lambda x: slope(x) ** 4, q)
    assert float(meanfield.moment(phi, q, power=4, derivative=True)) == pytest.approx(expected, rel=1e-9)
