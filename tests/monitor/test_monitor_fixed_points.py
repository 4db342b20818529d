"""The length map's fixed-point structure: every critical point and saddle-node against an independent
scipy computation (meanfield_reference: adaptive quadrature and Brent's method, written apart from the
code under test), stability against the map's own iterates, and the closed forms of the ReLU family."""

import math

import pytest
import torch
from scipy import integrate, optimize, stats
from torch import nn

from template.monitor import fixed_points, meanfield

ACTIVATIONS = {
    "tanh": nn.Tanh(),
    "gelu": nn.GELU(),
    "silu": nn.SiLU(),
    "leaky_relu": nn.LeakyReLU(0.2),
    "relu": nn.ReLU(),
}
BIAS_VARS = [0.0, 1e-4, 0.01, 0.05, 0.1, 0.2, 0.5]


def _iterate(phi, weight_var, bias_var, q, steps):
    for _ in range(steps):
        q = float(meanfield.length_map(phi, q, weight_var, bias_var))
    return q


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
    ours = fixed_points.critical_weight_var(torch.tanh, bias_var)
    assert ours == pytest.approx(_scipy_tanh_critical(bias_var), rel=1e-7)
    if bias_var == 0.05:
        assert ours == pytest.approx(1.761, abs=1e-3)  # Schoenholz et al. 2017, Fig. 1


def test_tanh_critical_line_at_zero_bias_is_one_over_the_slope_at_zero_squared():
    """σ²_b = 0: q* = 0 up to σ²_w = 1/tanh′(0)² = 1, so χ₁ = 1 exactly there; just above it, a small q*."""
    q = fixed_points.fixed_point(torch.tanh, 1.001, 0.0)
    assert 1e-4 < q < 1e-3
    assert float(meanfield.length_map(torch.tanh, q, 1.001, 0.0)) == pytest.approx(q, rel=1e-12)
    assert fixed_points.critical_weight_var(torch.tanh, 0.0) == 1.0


def test_depth_scale_diverges_on_the_critical_line_and_is_finite_off_it():
    critical = fixed_points.critical_weight_var(torch.tanh, 0.05)
    scales = [
        fixed_points.depth_scale(torch.tanh, w, 0.05) for w in (1.2, critical * 0.98, critical * 1.02, 3.0)
    ]
    assert all(math.isfinite(s) and s > 0 for s in scales)
    assert scales[1] > 10 * scales[0] and scales[2] > 10 * scales[3]  # ξ_c peaks at criticality
    assert fixed_points.depth_scale(torch.tanh, critical, 0.05) == math.inf


@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_the_relu_family_is_critical_only_at_zero_bias_with_closed_form_fixed_points(slope):
    """M(q) = (1 + a²) q/2: the map is a line, q* = σ²_b/(1 − σ²_w (1 + a²)/2), critical only at σ²_b = 0
    and σ²_w = 2/(1 + a²)."""
    phi = nn.LeakyReLU(slope) if slope else nn.ReLU()
    m = (1 + slope**2) / 2
    assert fixed_points.critical_weight_var(phi, 0.0) == pytest.approx(1 / m, rel=1e-12)
    for bias_var in BIAS_VARS[1:]:
        assert math.isnan(fixed_points.critical_weight_var(phi, bias_var))
    assert fixed_points.fixed_point(phi, 1.5, 0.1) == pytest.approx(0.1 / (1 - 1.5 * m), rel=1e-12)
    assert fixed_points.fixed_point(phi, 1 / m + 0.1, 0.1) == math.inf
    assert fixed_points.fixed_point(phi, 1 / m, 0.0, start=3.7) == 3.7  # every q is fixed


@pytest.mark.parametrize("name", ["tanh", "gelu", "silu"])
@pytest.mark.parametrize("weight_var, bias_var", [(1.5, 0.05), (2.2, 0.05), (2.0, 0.01), (2.2742, 0.2)])
def test_every_fixed_point_is_a_root_and_its_stability_is_what_the_iterates_do(name, weight_var, bias_var):
    """Each returned q* solves L(q*) = q* to 1e-12; a stable one pulls a 1 % perturbation back (on both
    sides, after 200 steps), an unstable one pushes it away. SiLU at (2.2742, 0.2) is just past its
    saddle-node: no fixed point, and the iterates from q = 1 grow without bound (the former Newton polish
    returned q = 99.06 there, with L(q) − q = +13.5)."""
    phi = ACTIVATIONS[name]
    found = fixed_points.fixed_points(phi, weight_var, bias_var)
    for point in found:
        if point.q == 0:
            continue
        assert float(meanfield.length_map(phi, point.q, weight_var, bias_var)) == pytest.approx(
            point.q, rel=1e-12
        )
        for side in (0.99, 1.01):
            start = point.q * side
            after = _iterate(phi, weight_var, bias_var, start, 200)
            if point.stable:
                assert abs(after - point.q) < 0.1 * abs(start - point.q), (point, side)
            else:
                assert abs(after - point.q) > abs(start - point.q), (point, side)
    reached = fixed_points.fixed_point(phi, weight_var, bias_var)
    if math.isfinite(reached):
        assert reached in [p.q for p in found if p.stable]
    else:
        assert _iterate(phi, weight_var, bias_var, 1.0, 2000) > 1e3
    if name == "silu" and weight_var == 2.2742:
        assert found == [] and reached == math.inf


def test_a_saddle_node_is_where_a_stable_and_an_unstable_fixed_point_meet():
    """GELU at σ²_b = 0.05: 0.1 % below the first saddle-node's σ²_w, a stable and an unstable fixed point
    lie on either side of its q; 0.1 % above, neither does."""
    phi = ACTIVATIONS["gelu"]
    saddle = fixed_points.structure(phi, 0.05).saddle_nodes[0]
    near = lambda points: [p for p in points if 0.5 * saddle.q < p.q < 2 * saddle.q]  # noqa: E731
    below = near(fixed_points.fixed_points(phi, saddle.weight_var * 0.999, 0.05))
    assert [p.stable for p in below] == [True, False]
    assert below[0].q < saddle.q < below[1].q
    assert near(fixed_points.fixed_points(phi, saddle.weight_var * 1.001, 0.05)) == []


def test_the_map_is_increasing_so_fixed_point_may_walk_monotonically():
    """fixed_point's shortcut (the nearest root on the side of L(start) − start) needs M′(q) > 0."""
    q = torch.logspace(-8, 4, 2000, dtype=torch.float64)
    for name, phi in ACTIVATIONS.items():
        assert bool((meanfield.moment(phi, q).diff() > 0).all()), name
