"""The trainability sweep through submitit's local executor: tiny real runs in parallel processes, one
point made to fail (a depth the vanilla net refuses, discovered in its job), every other result kept,
and the same command started again running only what has no completed result."""

import json

import pytest

from template.__main__ import main
from tests.helpers.tiny import tiny

# The sweep sets each point's depth and refuses a model.depth of its own: the tiny run's is left out.
TINY = [override for override in tiny(
    "model.name=vanilla", "model.width=2", "model.activation=tanh", "data.synthetic_train_size=120",
    "data.val_size=30", "data.synthetic_test_size=30", "data.batch_size=30", "trainer.max_epochs=1",
    "logger.name=csv", "stats.jacobian=never", "phase.resolution=5", "phase.sweep=true",
    "phase.executor=local", "phase.parallel=2", "phase.timeout_min=5", "phase.depths=[2,4]",
    "phase.weight_vars=[1.5]",
) if not override.startswith("model.depth=")]  # fmt: skip


@pytest.mark.slow
def test_sweep_keeps_results_reports_the_failure_and_resumes_only_the_missing(tmp_path, capsys):
    folder = tmp_path / "phase"
    args = ["phase", *TINY, f"phase.folder={folder}", f"runs_dir={tmp_path}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "sweep: 1 completed, 1 failed" in out
    record = json.loads((folder / "phase.json").read_text())
    points = record["sweep"]["points"]
    assert {key: p["status"] for key, p in points.items()} == {"d2-w1.5": "failed", "d4-w1.5": "completed"}
    assert "UsageError: model.depth=2 is too shallow for the vanilla net" in points["d2-w1.5"]["error"]
    for key in ("d4-w1.5",):
        assert 0 <= points[key]["result"]["val/acc"] <= 1 and points[key]["result"]["steps"] == 3
        assert (folder / "runs" / key / "summary.json").is_file()
    assert len(list((folder / "submitit").glob("*_log.out"))) == 2  # each point was a job of its own
    done = {"d4-w1.5": (folder / "points" / "d4-w1.5.json").stat().st_mtime_ns}
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "sweep: 1 of 2 points already done; running 1" in out  # the failed one, tried again
    assert {key: (folder / "points" / f"{key}.json").stat().st_mtime_ns for key in done} == done
    assert (folder / "phase_diagram.png").stat().st_size > 10_000
