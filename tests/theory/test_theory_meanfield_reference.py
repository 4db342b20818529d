"""The independent mean-field reference against closed forms, so that it can be trusted as a referee.

ReLU and leaky ReLU (positively homogeneous: M(q) = k q), erf (Williams 1997), ELU (Gaussian integrals
of exponentials), the arc-cosine kernel (Cho & Saul 2009) and tanh's small- and large-q expansions.
"""

import math

import pytest
from scipy.special import erfcx

from tests.helpers.meanfield_reference import (
    chi1,
    critical_points,
    cross_moment,
    derivative_moment,
    fixed_points,
    fourth_derivative_moment,
    saddle_nodes,
    second_moment,
    second_moment_slope,
)

QS = [1e-8, 1e-6, 1e-4, 1e-2, 0.3, 1.0, 10.0, 100.0, 1e3, 1e4]
CS = [-1.0, -0.99, -0.9, -0.5, 0.0, 0.5, 0.9, 0.99, 1.0]


def arc_cosine(q, c):
    theta = math.acos(c)
    return q / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * math.cos(theta))


def williams(q, c):
    return 2 / math.pi * math.asin(2 * q * c / (1 + 2 * q))


@pytest.mark.parametrize("q", QS)
def test_relu_family_moments(q):
    assert second_moment("relu", q) == pytest.approx(q / 2, rel=1e-12)
    assert derivative_moment("relu", q) == pytest.approx(0.5, rel=1e-12)
    assert fourth_derivative_moment("relu", q) == pytest.approx(0.5, rel=1e-12)
    assert second_moment_slope("relu", q) == pytest.approx(0.5, rel=1e-12)
    a = 0.2
    assert second_moment("leaky_relu", q, slope=a) == pytest.approx((1 + a * a) * q / 2, rel=1e-12)
    assert derivative_moment("leaky_relu", q, slope=a) == pytest.approx((1 + a * a) / 2, rel=1e-12)
    assert fourth_derivative_moment("leaky_relu", q, slope=a) == pytest.approx((1 + a**4) / 2, rel=1e-12)


@pytest.mark.parametrize("q", QS)
def test_erf_moments(q):
    assert second_moment("erf", q) == pytest.approx(williams(q, 1.0), rel=1e-12)
    assert derivative_moment("erf", q) == pytest.approx(4 / math.pi / math.sqrt(1 + 4 * q), rel=1e-12)
    assert fourth_derivative_moment("erf", q) == pytest.approx(
        16 / math.pi**2 / math.sqrt(1 + 8 * q), rel=1e-12
    )
    slope = 4 / math.pi / ((1 + 2 * q) * math.sqrt(1 + 4 * q))
    assert second_moment_slope("erf", q) == pytest.approx(slope, rel=1e-11)


@pytest.mark.parametrize("q", [1e-2, 0.3, 1.0, 10.0, 100.0, 1e4])  # the closed form cancels below
def test_elu_moments(q):
    # E[exp(t x) 1{x < 0}] = erfcx(t sqrt(q/2)) / 2 for x ~ N(0, q).
    def tail(t):
        return 0.5 * erfcx(t * math.sqrt(q / 2))

    assert second_moment("elu", q) == pytest.approx(q / 2 + tail(2) - 2 * tail(1) + 0.5, rel=1e-12)
    assert derivative_moment("elu", q) == pytest.approx(0.5 + tail(2), rel=1e-12)
    assert fourth_derivative_moment("elu", q) == pytest.approx(0.5 + tail(4), rel=1e-12)


def test_tanh_expansions():
    for q in [1e-8, 1e-6]:  # tanh^2 x = x^2 - 2x^4/3 + 17x^6/45 - ...
        assert second_moment("tanh", q) == pytest.approx(q - 2 * q * q + 17 / 3 * q**3, rel=1e-12)
    q = 1e4  # 1 - M = E[sech^2(sqrt(q) z)], expanded in 1/q; the next term is O(q^-3.5)
    tail = (2 - math.pi**2 / (12 * q) + 7 * math.pi**4 / (960 * q * q)) / math.sqrt(2 * math.pi * q)
    assert 1 - second_moment("tanh", q) == pytest.approx(tail, rel=1e-10)


@pytest.mark.parametrize("c", CS)
def test_cross_moment_closed_forms(c):
    assert cross_moment("relu", 1.0, c) == pytest.approx(arc_cosine(1.0, c), abs=1e-11)
    assert cross_moment("erf", 1.0, c) == pytest.approx(williams(1.0, c), abs=1e-11)
    # leaky = (1 - a) relu(x) + a x, so C = (1 - a)^2 arc-cosine + a q c.
    a = 0.2
    assert cross_moment("leaky_relu", 1.0, c, slope=a) == pytest.approx(
        (1 - a) ** 2 * arc_cosine(1.0, c) + a * c, abs=1e-11
    )


@pytest.mark.parametrize("q", [1e-6, 1e4])
def test_cross_moment_scales(q):
    for c in [-0.99, 0.0, 0.999]:
        assert cross_moment("relu", q, c) == pytest.approx(arc_cosine(q, c), abs=1e-11 * q)
        assert cross_moment("erf", q, c) == pytest.approx(williams(q, c), abs=1e-11 * second_moment("erf", q))


def test_relu_fixed_and_critical_points():
    # M(q) = q/2: q* = sigma_b^2 / (1 - sigma_w^2/2) for sigma_w^2 < 2, stable; none beyond.
    assert fixed_points("relu", 1.5, 0.1) == [(pytest.approx(0.4, rel=1e-12), True)]
    assert fixed_points("relu", 2.5, 0.1) == []
    assert fixed_points("relu", 1.5, 0.0) == [(0.0, True)]
    assert fixed_points("relu", 2.5, 0.0) == [(0.0, False)]
    ((weight_var, q, stable),) = critical_points("leaky_relu", 0.0, slope=0.2)
    assert weight_var == pytest.approx(2 / 1.04, rel=1e-12) and math.isnan(q) and stable
    assert critical_points("relu", 0.05) == [] and saddle_nodes("relu", 0.05) == []


def test_critical_points_are_fixed_points_with_unit_chi1():
    assert critical_points("tanh", 0.05)[0].weight_var == pytest.approx(1.761, abs=5e-4)  # Schoenholz et al.
    for name, bias_var in [("tanh", 0.05), ("gelu", 0.05), ("gelu", 0.2)]:
        for weight_var, q, stable in critical_points(name, bias_var):
            assert chi1(name, weight_var, q) == pytest.approx(1.0, rel=1e-10)
            match = [
                p for p in fixed_points(name, weight_var, bias_var) if math.isclose(p.q, q, rel_tol=1e-7)
            ]
            assert len(match) == 1 and match[0].stable == stable
