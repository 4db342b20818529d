"""The phase diagram against the theory it draws: the χ₁ = 1 line is where the theory's own χ₁ (at the
fixed point, iterated independently) crosses one, ReLU's closed forms hold on the grid, and `make phase`
writes the figure and phase.json, refusing bad input in one line."""

import json
import math

import numpy as np
import pytest
from torch import nn

from template.__main__ import main
from template.sweep import phase
from template.theory import fixed_points, meanfield


def test_the_critical_line_is_where_chi1_crosses_one():
    phi = nn.Tanh()
    bias_vars = np.array([0.01, 0.05, 0.2])
    line = phase.critical_line(phi, bias_vars)
    for weight_var, bias_var in zip(line, bias_vars, strict=True):
        for offset, side in ((-0.02, -1), (0.0, 0), (0.02, 1)):
            w = weight_var + offset
            chi1 = float(meanfield.chi(phi, fixed_points.fixed_point(phi, w, bias_var), w))
            if side == 0:
                assert chi1 == pytest.approx(1, abs=1e-6)
            else:
                assert np.sign(chi1 - 1) == side
    grid = phase.grid_theory(phi, line[:1], bias_vars[:1])
    assert grid["chi1"][0, 0] == pytest.approx(1, abs=1e-3)


def test_relu_grid_matches_closed_forms():
    """ReLU: χ₁ = σ²_w/2 at any q* (φ′² is 1 on half the line), so ξ_c = −1/ln(σ²_w/2) in the ordered phase
    and the critical point is (2, 0)."""
    weight_vars, bias_vars = np.array([0.5, 1.0, 1.5, 1.9]), np.array([0.0, 0.1])
    grid = phase.grid_theory(nn.ReLU(), weight_vars, bias_vars)
    assert np.allclose(grid["chi1"], weight_vars / 2, rtol=1e-9)
    assert np.allclose(grid["depth_scale"], -1 / np.log(weight_vars / 2), rtol=1e-9)
    assert phase.critical_line(nn.ReLU(), np.array([0.0]))[0] == pytest.approx(2, rel=1e-6)


def test_make_phase_draws_the_diagram(tmp_path):
    folder = tmp_path / "phase"
    args = ["model.activation=tanh", "phase.resolution=7", f"phase.folder={folder}", f"runs_dir={tmp_path}"]
    assert main(["phase", *args]) == 0
    record = json.loads((folder / "phase.json").read_text())
    assert (folder / "phase_diagram.png").stat().st_size > 10_000
    assert len(record["critical_line"]) == 7 and record["activation"] == "tanh"
    b = record["bias_vars"][3]
    assert record["critical_line"][3] == pytest.approx(
        fixed_points.critical_weight_var(nn.Tanh(), b), rel=1e-9
    )
    assert "sweep" not in record and not math.isnan(record["chi1"][3][3])


def test_make_phase_draws_gelus_unstable_branch_and_saddle_nodes_apart_from_its_critical_line(tmp_path):
    """GELU below σ²_b ≈ 0.17: no stable critical point, χ₁ = 1 only on the unstable branch, to the left of
    the saddle-node where the stable fixed point dies; above it, the critical line."""
    folder = tmp_path / "phase"
    args = ["model.activation=gelu", "phase.resolution=5", "phase.bias_var_range=[0.05,0.25]",
            f"phase.folder={folder}", f"runs_dir={tmp_path}"]  # fmt: skip
    assert main(["phase", *args]) == 0
    record = json.loads((folder / "phase.json").read_text())
    assert record["bias_vars"] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.25])
    assert [w is None for w in record["critical_line"]] == [True, True, True, False, False]
    for i in range(3):
        assert record["unstable_critical"][i] < record["saddle_node_1"][i]
        assert record["saddle_node_2"][i] < 2 < record["saddle_node_1"][i]
    for key in ("unstable_critical", "saddle_node_1", "saddle_node_2"):
        assert record[key][3:] == [None, None]
    assert (folder / "phase_diagram.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "override, message",
    [
        ("phase.executor=ray", "phase.executor='ray' is unknown; choose one of: local, debug, slurm"),
        ("model.depth=30", "model.depth= is set by the sweep for each point"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, override, message):
    assert main(["phase", override, f"runs_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_local_processes_share_the_cores_and_other_executors_keep_torchs_default(monkeypatch):
    monkeypatch.setattr(phase.os, "cpu_count", lambda: 16)
    assert phase.thread_share("local", 2) == 8
    assert phase.thread_share("local", 32) == 1  # never 0
    assert phase.thread_share("debug", 2) is None and phase.thread_share("slurm", 64) is None
