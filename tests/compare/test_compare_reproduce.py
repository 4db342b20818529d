"""`make reproduce`'s verdict per run, on comparison folders written here: the thresholds and the
collapse rule, not the training (the slow quick-demo test and the quoted five-seed output do that)."""

import json

import pytest

from template.__main__ import main
from template.compare import reproduce


def folder_with(tmp_path, init: str, final: float, accs: list[float], warmup: int = 3):
    folder = tmp_path / "compare-x"
    folder.mkdir()
    (tmp_path / "run").mkdir()
    epochs = [{"epoch": i, "val/acc": acc} for i, acc in enumerate(accs)]
    (tmp_path / "run" / "summary.json").write_text(json.dumps({"epochs": epochs}))
    (tmp_path / "run" / "config.yaml").write_text(f"scheduler:\n  warmup_epochs: {warmup}\n")
    runs = [{"seed": 4, "run_dir": "run", "val/acc": final}]
    (folder / "results.json").write_text(json.dumps({"results": {init: {"runs": runs}}}))
    return folder


@pytest.mark.parametrize(
    ("init", "accs", "holds"),
    [
        ("kaiming", [0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 0.9], "yes"),
        ("kaiming", [0.1, 0.2, 0.3, 0.5, 0.7, 0.75, 0.79], "no"),  # below 0.8
        ("kaiming", [0.1, 0.2, 0.3, 0.5, 0.8, 0.55, 0.9], "no"),  # collapsed by 0.25 after the warm-up
        ("kaiming", [0.1, 0.6, 0.3, 0.5, 0.7, 0.85, 0.9], "yes"),  # a dip during the warm-up does not count
        ("glorot", [0.1, 0.1, 0.12, 0.1, 0.09, 0.1, 0.2], "yes"),
        ("glorot", [0.1, 0.1, 0.12, 0.1, 0.09, 0.1, 0.21], "no"),
    ],
)
def test_each_run_is_judged_by_its_final_accuracy_and_its_curve(tmp_path, init, accs, holds):
    (row,) = reproduce._rows("1 thread", folder_with(tmp_path, init, accs[-1], accs))
    assert (row["setting"], row["init"], row["seed"], row["holds"]) == ("1 thread", init, 4, holds)


def test_a_curve_that_only_rises_has_no_drop(tmp_path):
    accs = [0.1, 0.2, 0.3, 0.5, 0.7, 0.85, 0.9]
    (row,) = reproduce._rows("2 threads", folder_with(tmp_path, "kaiming", 0.9, accs))
    assert row["drop"] == 0.0  # not -0.05: a new best after the warm-up is no drop


def test_the_warm_up_that_does_not_count_is_the_runs_own(tmp_path):
    accs = [0.1, 0.2, 0.3, 0.5, 0.8, 0.55, 0.9]  # a dip of 0.25 at epoch 5
    (row,) = reproduce._rows("1 thread", folder_with(tmp_path, "kaiming", 0.9, accs, warmup=5))
    assert (row["drop"], row["holds"]) == (0.0, "yes")


@pytest.mark.parametrize("override", ["experiment=he2015_30layer", "compare.inits=[kaiming]"])
def test_reproduce_refuses_what_would_change_its_claim(override, capsys):
    assert main(["reproduce", override]) == 2
    key = override.partition("=")[0]
    assert (
        capsys.readouterr().err
        == f"error: {key}= is set by reproduce (quick_demo, kaiming against glorot); leave it out\n"
    )
