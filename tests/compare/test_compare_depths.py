"""`compare.depths`: a depth sweep trains every init at each model.depth, keeps accuracies of different
depths apart in results.json and results.md, and draws plots/depth.png (final error and the correlation
at the last hidden layer at init, against depth). The depth_sweep experiment, CI-sized, runs end to end
on the real offline digits."""

import json

import pytest
from omegaconf import OmegaConf

from template import compare, config
from template.compare import plots, results
from template.compare.comparison import _run_config
from template.compare.results import Run
from template.errors import UsageError
from tests.helpers.tiny import tiny

TINY = [  # the tiny run without its model.depth, which a depth sweep sets itself
    o
    for o in tiny("data.synthetic_train_size=192", "data.batch_size=128", "trainer.max_epochs=1")
    if not o.startswith("model.depth=")
]


def test_each_run_has_its_depth_and_results_keep_depths_apart(tmp_path):
    runs = tmp_path / "runs"
    folder = compare.run([*TINY, "compare.inits=[kaiming]", "compare.depths=[4,6]", f"runs_dir={runs}"])
    found = json.loads((folder / "results.json").read_text())
    assert found["depths"] == [4, 6]
    for init in ("kaiming",):
        by_depth = found["results"][init]["depths"]
        assert set(by_depth) == {"4", "6"} and "mean" not in found["results"][init]
        for depth, result in by_depth.items():
            (run,) = result["runs"]
            assert run["depth"] == int(depth) and run["status"] == "completed"
            assert result["mean"]["val/acc"] == run["val/acc"]
            saved = OmegaConf.load(runs / run["run_dir"] / "config.yaml")
            assert (saved.model.depth, saved.init.name) == (int(depth), init)
    table = (folder / "results.md").read_text()
    assert "| init | 4 layers: val/acc | 6 layers: val/acc |" in table
    assert (folder / "plots" / "depth.png").read_bytes()[:4] == b"\x89PNG"


def test_a_depth_sweep_refuses_a_depth_of_its_own_and_a_variant_that_sets_one():
    with pytest.raises(UsageError) as error:
        compare.run([*TINY, "compare.depths=[4,6]", "model.depth=8"])
    assert str(error.value) == (
        "model.depth= cannot be given with compare.depths=[4, 6]: the sweep sets each run's depth; "
        "list them all in compare.depths"
    )
    variants = OmegaConf.create({"deep": ["model.depth=9"]})
    with pytest.raises(UsageError) as error:
        _run_config("x", TINY, "deep", 0, variants, depth=4)
    assert str(error.value).startswith("compare.variants.deep sets model.depth, which compare sets")


def test_markdown_gives_mean_spread_and_every_seed_per_depth(tmp_path):
    def run(init, depth, seed, acc):
        folder = tmp_path / f"{init}-{depth}-{seed}"
        folder.mkdir()
        summary = {"status": "completed", "final": {"val/acc": acc, "val/loss": 1.0}}
        (folder / "summary.json").write_text(json.dumps(summary))
        return Run(init, seed, folder, depth=depth)

    done = [run("tat", 30, 0, 0.9), run("tat", 30, 1, 0.8), run("tat", 200, 0, 0.5), run("tat", 200, 1, 0.7)]
    found = results.collect("c", "depth_sweep", [], ["tat"], [0, 1], done, depths=[30, 200])
    assert found["results"]["tat"]["depths"]["30"]["mean"]["val/acc"] == pytest.approx(0.85)
    assert found["results"]["tat"]["depths"]["200"]["std"]["val/acc"] == pytest.approx(0.1414, abs=1e-4)
    assert "| tat | 0.850 ± 0.071 (2/2: 0.900, 0.800) | 0.600 ± 0.141 (2/2: 0.500, 0.700) |" in (
        results.markdown(found)
    )


def test_the_depth_figure_draws_with_runs_missing_at_a_depth():
    summary = {
        "final": {"val/acc": 0.5},
        "at_init": {"layers": [{"corr": 0.3, "corr_theory": 0.2}, {"corr": 0.9, "corr_theory": 0.95}, {}]},
    }
    png = plots.depth({"kaiming": {30: [summary, summary], 100: []}, "tat": {30: [summary]}}, "t")
    assert png[:4] == b"\x89PNG"
    assert plots._last_hidden(summary) == (0.9, 0.95)  # the layer before the classifier


def test_depth_sweep_experiment_sets_the_five_nets_of_the_figure():
    base = config.load(["experiment=depth_sweep"])
    assert list(base.compare.depths) == [30, 100, 200] and list(base.compare.seeds) == [0, 1, 2]
    made = {
        label: _run_config("x", ["experiment=depth_sweep"], label, 0, base.compare.variants, 200)
        for label in base.compare.inits
    }
    expected = {
        "kaiming": ("kaiming", "relu", {}),
        "glorot": ("glorot", "relu", {}),
        "kaiming_orthogonal": ("meanfield", "relu", {"weight_var": 2.0, "distribution": "orthogonal"}),
        "tat": ("tat", "leaky_relu", {}),
        "xiao": (
            "critical",
            "tanh",
            {"distribution": "orthogonal", "bias_var": 0.001, "start": "fixed_point"},
        ),
    }
    for label, cfg in made.items():
        options = OmegaConf.to_container(cfg.init.options)
        assert (cfg.init.name, cfg.model.activation, options) == expected[label], label
        assert (cfg.model.name, cfg.model.depth, cfg.data.name) == ("vanilla", 200, "digits_cifar")


@pytest.mark.slow
def test_the_depth_sweep_runs_end_to_end_on_the_offline_digits(tmp_path):
    """The experiment as `make compare EXPERIMENT=depth_sweep` runs it, at CI size: every init of the
    figure at depths 16 and 24 (TAT's η = 0.9 needs 13 activations or more), two steps each, then the
    figure."""
    folder = compare.run(
        [
            "experiment=depth_sweep",
            "compare.depths=[16,24]",
            "compare.seeds=[0]",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=2",
            "trainer.enable_progress_bar=false",
            f"runs_dir={tmp_path / 'runs'}",
        ]
    )
    found = json.loads((folder / "results.json").read_text())
    for init, result in found["results"].items():
        for depth in ("16", "24"):
            (run,) = result["depths"][depth]["runs"]
            assert run["status"] == "completed", (init, depth)
            summary = json.loads((tmp_path / "runs" / run["run_dir"] / "summary.json").read_text())
            last = summary["at_init"]["layers"][-2]
            assert -1 <= last["corr"] <= 1 and -1 <= last["corr_theory"] <= 1, (init, depth)
    assert (folder / "plots" / "depth.png").stat().st_size > 10_000
