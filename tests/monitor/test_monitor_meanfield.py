"""The mean-field maps' quadrature against closed forms: ReLU (He et al. 2015; Cho & Saul 2009's arc-cosine
kernel), erf (Williams 1997), and tanh's critical line (Schoenholz et al. 2017) against scipy."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats

from template.monitor import meanfield

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


@pytest.mark.parametrize("c", [-0.5, 0.0, 0.3, 0.8, 0.99])
def test_relu_correlation_map_is_the_arc_cosine_kernel(c):
    q = 1.7
    theta = math.acos(c)
    closed = q / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * math.cos(theta))
    assert float(meanfield.cross_moment(relu, q, c * q)) == pytest.approx(closed, rel=5e-4)


@pytest.mark.parametrize(("a", "q", "c"), [(1.0, 0.5, 0.2), (0.5, 2.0, 0.9), (2.0, 0.1, -0.3)])
def test_erf_maps_match_williams_closed_forms(a, q, c):
    length = 2 / math.pi * math.asin(2 * a * a * q / (1 + 2 * a * a * q))
    cross = 2 / math.pi * math.asin(2 * a * a * c * q / (1 + 2 * a * a * q))
    assert float(meanfield.moment(erf_of(a), q)) == pytest.approx(length, rel=1e-9)
    assert float(meanfield.cross_moment(erf_of(a), q, c * q)) == pytest.approx(cross, rel=1e-6)
    slope = 4 * a * a / math.pi / math.sqrt(1 + 4 * a * a * q)  # E[φ'²] of erf(a x)
    assert float(meanfield.moment(erf_of(a), q, derivative=True)) == pytest.approx(slope, rel=1e-9)


def _scipy_tanh_critical(bias_var: float) -> float:
    """σ²_w with χ₁ = 1 at the length map's fixed point, from scipy's adaptive quadrature and root finder."""
    gauss = lambda f: integrate.quad(lambda z: f(z) * stats.norm.pdf(z), -12, 12, limit=200)[0]  # noqa: E731

    def chi_minus_one(weight_var):
        q, previous = 1.0, 0.0
        while abs(q - previous) > 1e-13:
            std = math.sqrt(q)
            previous, q = q, weight_var * gauss(lambda z, std=std: math.tanh(std * z) ** 2) + bias_var
        std = math.sqrt(q)
        return weight_var * gauss(lambda z: (1 - math.tanh(std * z) ** 2) ** 2) - 1

    return optimize.brentq(chi_minus_one, 1.0, 4.0, xtol=1e-8)


@pytest.mark.parametrize("bias_var", [0.05, 0.3])
def test_tanh_critical_line_matches_scipy_and_schoenholz(bias_var):
    ours = meanfield.critical_weight_var(torch.tanh, bias_var)
    assert ours == pytest.approx(_scipy_tanh_critical(bias_var), rel=1e-4)
    if bias_var == 0.05:
        assert ours == pytest.approx(1.761, abs=1e-3)  # Schoenholz et al. 2017, Fig. 1


def test_tanh_critical_line_at_zero_bias_is_one_over_the_slope_at_zero_squared():
    """σ²_b = 0: q* = 0 up to σ²_w = 1/tanh′(0)² = 1, so χ₁ = 1 exactly there. Just above it q* is tiny
    and Newton's last steps hop between two neighbours of the root (2.2e-13 apart at σ²_w = 1.001, on an
    Intel Xeon); taking the unpolished iterate instead put the line at 1.0014."""
    q = meanfield.fixed_point(torch.tanh, 1.001, 0.0)
    assert float(meanfield.length_map(torch.tanh, q, 1.001, 0.0)) == pytest.approx(q, rel=1e-12)
    assert meanfield.critical_weight_var(torch.tanh, 0.0) == pytest.approx(1.0, abs=1e-6)


def test_depth_scale_diverges_on_the_critical_line_and_is_finite_off_it():
    critical = meanfield.critical_weight_var(torch.tanh, 0.05)
    scales = [
        meanfield.depth_scale(torch.tanh, w, 0.05) for w in (1.2, critical * 0.98, critical * 1.02, 3.0)
    ]
    assert all(math.isfinite(s) and s > 0 for s in scales)
    assert scales[1] > 10 * scales[0] and scales[2] > 10 * scales[3]  # ξ_c peaks at criticality
    assert meanfield.depth_scale(torch.tanh, critical, 0.05) > 1000


def test_batch_spread_is_hanin_rolnicks_five_for_one_relu_sample_and_averages_away_for_independent_ones():
    assert float(meanfield.batch_spread(relu, 1.3, 1.3, batch=1)) == pytest.approx(5.0, rel=1e-9)
    assert float(meanfield.batch_spread(relu, 1.3, 0.0, batch=100)) == pytest.approx(5.0 / 100, rel=1e-6)
    assert float(meanfield.batch_spread(relu, 1.3, 1.3, batch=100)) == pytest.approx(5.0, rel=1e-9)


def test_gauss_hermite_nodes_integrate_a_gaussian_moment_exactly():
    z, w = meanfield._gauss(meanfield.NODES)
    assert float((w * z**8).sum()) == pytest.approx(105.0, rel=1e-12)  # E[z^8] = 7!!
    assert np.isclose(float(w.sum()), 1.0)
