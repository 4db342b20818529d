"""What reaches the loggers: every W&B key family read back from the offline run file, the scalars
through Lightning's logger interface to CSV and TensorBoard too, and the PNGs under plots/."""

import csv
import os

import numpy as np
import pytest
import torch
import wandb
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

from template.monitor import VarianceMonitor
from tests.helpers.monitor_nets import QUIET_WANDB, Classifier, PlainCNN, loader, trainer
from tests.helpers.wandb_reader import read_run

LAYERS = ["features.0", "features.2", "features.4", "classifier"]
SCALARS = ["act_var", "act_var_predicted", "act_var_theory", "grad_var"]


@pytest.fixture
def quiet_wandb(monkeypatch):
    for key, value in QUIET_WANDB.items():
        monkeypatch.setenv(key, value)


def _fit(logger, plots_dir=None, steps=5, every_n_steps=2) -> VarianceMonitor:
    torch.manual_seed(0)
    monitor = VarianceMonitor(every_n_steps=every_n_steps, histogram_bins=16, plots_dir=plots_dir)
    trainer(steps, logger, [monitor]).fit(Classifier(PlainCNN(4, 8, "kaiming")), loader(64, (3, 8, 8), 8))
    return monitor


def test_every_key_family_reads_back_from_the_offline_wandb_run(tmp_path, quiet_wandb):
    logger = WandbLogger(project="monitor-test", save_dir=str(tmp_path), mode="offline")
    monitor = _fit(logger, plots_dir=tmp_path / "plots")
    wandb.finish()
    wandb.teardown()

    run = read_run(tmp_path)
    assert run.run_id == logger.version
    for family in SCALARS:
        for layer in LAYERS:
            assert [step for step, _ in run.column(f"{family}/{layer}")] == [0, 2, 4], (family, layer)
    for layer in monitor.at_init["layers"]:
        for family in ("act_var", "act_var_predicted", "grad_var"):
            assert run.column(f"{family}/{layer['name']}")[0] == (0, pytest.approx(layer[family], rel=1e-6))
    for layer in LAYERS:
        histograms = run.column(f"act_hist/{layer}/values")
        assert [step for step, _ in histograms] == [0, 2, 4]
        edges = run.column(f"act_hist/{layer}/bins")[0][1]
        assert len(histograms[0][1]) == 16 and len(edges) == 17 and np.all(np.diff(edges) > 0)
        assert run.column(f"act_hist/{layer}/_type")[0][1] == "histogram"
    for plot, step in (("variance_vs_depth", 0), ("variance_heatmap", 4)):
        [(logged_step, kind)] = run.column(f"plots/{plot}/_type")
        assert (logged_step, kind) == (step, "image-file")
        png = tmp_path / "plots" / f"{plot}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        [(_, path)] = run.column(f"plots/{plot}/path")
        assert len(list((tmp_path / "wandb").glob(f"offline-run-*/files/{path}"))) == 1


def test_scalars_reach_csv_and_tensorboard_through_lightnings_logger_interface(tmp_path):
    _fit([CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")])
    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    for family in SCALARS:
        for layer in LAYERS:
            steps = [int(row["step"]) for row in rows if row.get(f"{family}/{layer}")]
            assert steps == [0, 2, 4], (family, layer)
    [events] = [p for p in (tmp_path / "tb").rglob("events.out.tfevents.*")]
    tags = events.read_bytes()
    assert all(f"{family}/{layer}".encode() in tags for family in SCALARS for layer in LAYERS)


def test_without_wandb_the_plots_are_still_written(tmp_path):
    _fit(None, plots_dir=tmp_path / "plots", steps=3)
    assert sorted(os.listdir(tmp_path / "plots")) == [
        "variance_heatmap.png",
        "variance_vs_depth.png",
    ]


def test_reader_reassembles_records_split_across_blocks(tmp_path, quiet_wandb):
    big = "x" * 100_000  # > 3 blocks of 32 KiB: FIRST, MIDDLE..., LAST
    run = wandb.init(mode="offline", dir=str(tmp_path), project="monitor-test", config={"big": big})
    run.log({"a": 1.0, "long": big})
    run.log({"a": 2.0})
    run.summary["done"] = True
    wandb.finish()
    wandb.teardown()
    offline = read_run(tmp_path)
    assert offline.config["big"] == big
    assert [row["a"] for row in offline.history] == [1.0, 2.0] and offline.history[0]["long"] == big
    assert offline.summary["done"] is True
