"""A tiny comparison end to end, in-process: every init x seed an ordinary run folder grouped under the
comparison's name, and a comparison folder whose results.json, results.md and figures agree with the
runs' own summary.json files. A run that diverges is recorded, and the comparison goes on."""

import json
import statistics

import pytest
from omegaconf import OmegaConf

from template import compare
from tests.helpers.provenance_check import assert_true_provenance
from tests.helpers.tiny import tiny
from tests.helpers.wandb_reader import read_run

# Seconds per run on two cores: a 5-layer net, two one-batch epochs on a few hundred synthetic images.
TINY = tiny("data.synthetic_train_size=192", "data.batch_size=128", "trainer.max_epochs=2")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    runs = tmp_path_factory.mktemp("compare") / "runs"
    folder = compare.run([*TINY, "compare.inits=[kaiming,glorot]", "compare.seeds=[0,1]", f"runs_dir={runs}"])
    return folder, json.loads((folder / "results.json").read_text())


def test_folder_holds_results_table_and_both_figures(comparison):
    folder, found = comparison
    assert folder.name.startswith("compare-") and folder.name.endswith("-default")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "plots/error_vs_epoch.png",
        "plots/variance_vs_depth.png",
        "results.json",
        "results.md",
    ]
    for png in folder.glob("plots/*.png"):
        assert png.read_bytes()[:8] == PNG
    assert (found["inits"], found["seeds"], found["experiment"]) == (["kaiming", "glorot"], [0, 1], None)
    table = (folder / "results.md").read_text()
    assert "| kaiming | 2/2 |" in table and "| glorot | 2/2 |" in table


def test_every_init_and_seed_is_an_ordinary_run_grouped_under_the_comparison(comparison):
    folder, found = comparison
    for init in ("kaiming", "glorot"):
        for row, seed in zip(found["results"][init]["runs"], (0, 1), strict=True):
            run_dir = folder.parent / row["run_dir"]
            assert row["seed"] == seed and row["status"] == "completed" and row["error"] is None
            config = OmegaConf.load(run_dir / "config.yaml")
            assert (config.init.name, config.seed, config.logger.group) == (init, seed, folder.name)
            assert read_run(run_dir).config["logger"]["group"] == folder.name
            assert (run_dir / "checkpoints" / "last.ckpt").is_file()


def test_results_agree_with_the_runs_summaries(comparison):
    folder, found = comparison
    for init, result in found["results"].items():
        summaries = [
            json.loads((folder.parent / r["run_dir"] / "summary.json").read_text()) for r in result["runs"]
        ]
        assert [s["init"] for s in summaries] == [init, init]
        for key in ("val/acc", "val/loss"):
            per_seed = [s["final"][key] for s in summaries]
            assert [row[key] for row in result["runs"]] == per_seed
            assert result["mean"][key] == pytest.approx(statistics.fmean(per_seed))
            assert result["std"][key] == pytest.approx(statistics.stdev(per_seed))


def test_results_record_their_provenance(comparison):
    _, found = comparison
    assert_true_provenance(found["provenance"])


def test_a_diverging_run_is_recorded_and_the_next_run_gets_its_own_wandb_run(tmp_path):
    runs = tmp_path / "runs"
    # lr 1e12 overflows within the first epoch; the next init's run must still complete on its own.
    folder = compare.run([*TINY, "optimizer.lr=1e12", f"runs_dir={runs}"])  # kaiming, glorot; seed 0
    found = json.loads((folder / "results.json").read_text())
    rows = {init: result["runs"][0] for init, result in found["results"].items()}
    statuses = {init: row["status"] for init, row in rows.items()}
    assert "nonfinite" in statuses.values(), statuses
    for init, row in rows.items():
        if row["status"] == "nonfinite":
            assert row["error"].startswith("non-finite") and row["val/acc"] is None
            assert found["results"][init]["mean"]["val/acc"] is None
    run_ids = [read_run(folder.parent / row["run_dir"]).run_id for row in rows.values()]
    assert len(set(run_ids)) == 2
    assert "nonfinite" in (folder / "results.md").read_text()
