"""The length map's fixed-point structure: every critical point and saddle-node against an independent
scipy computation (meanfield_reference: adaptive quadrature and Brent's method, written apart from the
code under test), stability against the map's own iterates, and the closed forms of the ReLU family."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from template import inits
from template.errors import UsageError
from template.theory import fixed_points, meanfield
from tests.helpers import meanfield_reference as reference

ACTIVATIONS = {
    "tanh": nn.Tanh(),
    "gelu": nn.GELU(),
    "silu": nn.SiLU(),
    "leaky_relu": nn.LeakyReLU(0.2),
    "relu": nn.ReLU(),
}
BIAS_VARS = [0.0, 1e-4, 0.01, 0.05, 0.1, 0.2, 0.5]
SLOPE = {"leaky_relu": {"slope": 0.2}}  # the reference's keyword for nn.LeakyReLU(0.2)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("bias_var", BIAS_VARS)
def test_critical_points_and_saddle_nodes_match_the_independent_computation(name, bias_var):
    """Every χ₁ = 1 point (σ²_w, q*, stable or not) and every saddle-node (σ²_w, χ₁ there) below q = 1e4,
    against scipy's adaptive quadrature and Brent's method. Both sides resolve the moments to ~1e-12 and
    the roots to 1e-13 in q, so 1e-7 on σ²_w leaves four orders of margin and still catches a 0.1 %
    error. A saddle-node's q sits where w(q) is flat — an error δ in w moves it by ~√δ — so its q gets
    1e-3. The reference searches χ₁ = 1 from q = 1e-5 up, below which rounding decides g − 1's sign;
    ours from 1e-6: at these σ²_b neither has a root between."""
    phi = ACTIVATIONS[name]
    ours = fixed_points.structure(phi, bias_var)
    theirs = reference.critical_points(name, bias_var, **SLOPE.get(name, {}))
    assert [p.stable for p in ours.critical] == [p.stable for p in theirs]
    for mine, expected in zip(ours.critical, theirs, strict=True):
        assert mine.weight_var == pytest.approx(expected.weight_var, rel=1e-7)
        assert mine.q == pytest.approx(expected.q, rel=1e-6, abs=1e-12, nan_ok=True)
    saddles = reference.saddle_nodes(name, bias_var, **SLOPE.get(name, {}))
    assert len(ours.saddle_nodes) == len(saddles)
    for mine, expected in zip(ours.saddle_nodes, saddles, strict=True):
        assert mine.weight_var == pytest.approx(expected.weight_var, rel=1e-7)
        assert mine.q == pytest.approx(expected.q, rel=1e-3)
        assert mine.chi1 == pytest.approx(reference.chi1(name, expected.weight_var, expected.q), rel=1e-4)


@pytest.mark.parametrize("name", ["gelu", "silu"])
def test_the_stable_critical_point_appears_where_the_independent_computation_says(name):
    """GELU ≈ 0.173, SiLU ≈ 0.555; ours bisects to 1e-4, theirs solves M′(q) = E[φ′²] (where a critical
    point turns stable) with Brent's method."""
    (threshold,) = reference.stability_thresholds(name)
    assert threshold.stable_above
    assert fixed_points.stable_from(ACTIVATIONS[name]) == pytest.approx(threshold.bias_var, abs=1e-4)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("bias_var", BIAS_VARS)
def test_init_critical_lands_on_the_stable_critical_point_or_refuses_in_one_line(name, bias_var):
    phi = ACTIVATIONS[name]
    model = nn.Sequential(nn.Linear(64, 64), phi, nn.Linear(64, 10))
    stable = [p for p in reference.critical_points(name, bias_var, **SLOPE.get(name, {})) if p.stable]
    if stable:
        inits.initialize(model, "critical", bias_var=bias_var)
        expected = stable[0].weight_var / 64  # Var[w] = σ²_w/fan_in
        point = fixed_points.structure(phi, bias_var).stable_critical
        assert point.weight_var / 64 == pytest.approx(expected, rel=1e-7)
        # the drawn weights: 4096 normal draws put their sample variance within 4·√(2/4096) = 8.8 %
        assert float(model[0].weight.detach().var()) == pytest.approx(expected, rel=0.088)
    else:
        with pytest.raises(UsageError) as refused:
            inits.initialize(model, "critical", bias_var=bias_var)
        message = str(refused.value)
        assert message.startswith(f"init.options.bias_var={bias_var:g}: ") and "\n" not in message
        assert "no stable critical point there" in message


def test_hayou_et_als_tanh_edge_of_chaos_points():
    """Hayou et al. 2019's code lists tanh's edge-of-chaos points as (σ_b, σ_w), from Monte Carlo moments
    (5·10⁵ samples, σ_w to about ±0.1 %). Theirs sit 0.1–0.3 % above ours at every σ_b, while the
    independent quadrature agrees with ours to 1e-7: the gap is their estimate's, and 0.5 % bounds it."""
    for sigma_b, sigma_w in [(0.05, 1.12434), (0.2, 1.30787), (0.5, 1.55254), (1.0, 1.85756)]:
        ours = math.sqrt(fixed_points.critical_weight_var(torch.tanh, sigma_b**2))
        assert ours == pytest.approx(sigma_w, rel=5e-3)
        assert ours < sigma_w


def _iterate(phi, weight_var, bias_var, q, steps):
    for _ in range(steps):
        q = float(meanfield.length_map(phi, q, weight_var, bias_var))
    return q


def test_tanh_critical_line_matches_schoenholz():
    assert fixed_points.critical_weight_var(torch.tanh, 0.05) == pytest.approx(
        1.761, abs=1e-3
    )  # their Fig. 1


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


def test_the_readmes_table_of_critical_points_is_what_the_code_computes():
    """Each cell of docs/theory.md's table: the stable critical σ²_w in bold, or '—' with the unstable
    χ₁ = 1 point's σ²_w."""
    readme = (Path(__file__).resolve().parents[2] / "docs" / "theory.md").read_text()
    header = next(line for line in readme.splitlines() if line.startswith("| σ²_b → |"))
    bias_vars = [float(cell) for cell in header.strip("|").split("|")[1:]]
    rows = {
        "tanh": "tanh",
        "ReLU": "relu",
        "leaky ReLU (a = 0.2)": "leaky_relu",
        "GELU": "gelu",
        "SiLU": "silu",
    }
    for label, name in rows.items():
        line = next(line for line in readme.splitlines() if line.startswith(f"| {label} |"))
        cells = [cell.strip() for cell in line.strip("|").split("|")[1:]]
        assert len(cells) == len(bias_vars), label
        for cell, bias_var in zip(cells, bias_vars, strict=True):
            found = fixed_points.structure(ACTIVATIONS[name], bias_var)
            if found.stable_critical:
                assert cell == f"**{found.stable_critical.weight_var:.4f}**", (label, bias_var)
            else:
                unstable = [p for p in found.critical if not p.stable]
                assert cell == (f"— ({unstable[0].weight_var:.3f} u)" if unstable else "—"), (label, bias_var)
