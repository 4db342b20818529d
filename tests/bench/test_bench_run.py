"""`make bench` end to end, tiny: one call runs every measurement twice, interleaved, and writes
bench.json. Timings on a shared CI machine are noise, so nothing here asserts a speed: the targets live
in the benchmark. What is asserted is what makes the numbers mean something: the schema, positive
finite ratios, both sides of the parity comparison stepping through the same images and training the
same way, and the plain loop really training."""

import contextlib
import io
import json
import math
import subprocess
import sys

import pytest
from provenance_check import assert_true_provenance

from template.bench import main

REPEATS, STEPS, BATCH = 2, 3, 16
TINY = [
    "model=plain",
    "depth=3",
    "width=4",
    f"batch_size={BATCH}",
    f"steps={STEPS}",
    "warmup=1",
    f"repeats={REPEATS}",
    "loader_size=256",
    "workers=0",
    "device=cpu",
]


def run_bench(tmp_path, *extra) -> tuple[dict, str]:
    """bench.json's content and what was printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*TINY, *extra, f"runs_dir={tmp_path}"]) == 0
    (path,) = tmp_path.glob("bench-*/bench.json")
    return json.loads(path.read_text()), printed.getvalue()


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return run_bench(tmp_path_factory.mktemp("bench"), "logger=none")


def test_bench_json_records_machine_command_and_every_repeat(bench):
    payload, _ = bench
    assert payload["command"].startswith("python -m template bench model=plain depth=3")
    assert {"cpu", "gpu", "torch", "threads", "device"} <= payload["hardware"].keys()
    assert payload["options"]["repeats"] == REPEATS and payload["date"]
    assert_true_provenance(payload["provenance"])
    expected = {"plain", "template", "template_no_monitor", "loader_device", "loader_torchvision", "startup"}
    assert set(payload["measurements"]) == expected
    for measurement in payload["measurements"].values():
        assert len(measurement["repeats"]) == REPEATS and measurement["median"]


def test_headline_numbers_are_positive_finite_with_targets(bench):
    metrics = bench[0]["metrics"]
    names = ("parity_ratio", "monitor_overhead_ratio", "loader_speedup", "startup_s")
    for name in (*names, "parity_ratio_cpu_time", "monitor_overhead_ratio_cpu_time"):
        entry = metrics[name]
        assert len(entry["repeats"]) == REPEATS
        assert all(math.isfinite(value) and value > 0 for value in entry["repeats"])
        assert entry["min"] <= entry["median"] <= entry["max"]
        if name in names:
            assert entry["target"] and isinstance(entry["met"], bool)


def test_both_sides_train_the_same_images_the_same_way(bench):
    measurements = bench[0]["measurements"]
    sides = [measurements[name]["repeats"] for name in ("plain", "template", "template_no_monitor")]
    for plain, template, unmonitored in zip(*sides, strict=True):
        assert plain["images"] == template["images"] == unmonitored["images"] == STEPS * BATCH
        # same weights, batches, optimizer and schedule: the same losses, step for step
        for key in ("loss_first", "loss_last"):
            assert template[key] == pytest.approx(plain[key], rel=1e-3)
            assert unmonitored[key] == pytest.approx(plain[key], rel=1e-3)


def test_plain_loop_really_trains(bench):
    for plain in bench[0]["measurements"]["plain"]["repeats"]:
        assert plain["weight_change"] > 0
        assert plain["loss_last"] < plain["loss_first"]


def test_loaders_deliver_the_whole_set(bench):
    for name in ("loader_device", "loader_torchvision"):
        for record in bench[0]["measurements"][name]["repeats"]:
            assert record["images"] == 256 and record["images_per_s"] > 0


def test_table_is_printed(bench):
    printed = bench[1]
    assert "parity_ratio" in printed and "startup_s" in printed and "bench.json:" in printed


def test_bad_option_is_one_line_on_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "template", "bench", "stepz=3"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "valid keys: model, depth" in result.stderr


@pytest.mark.slow
def test_default_logger_wandb_offline(tmp_path):
    payload, _ = run_bench(tmp_path, "repeats=1", "startup=false", "logger=wandb")
    assert payload["options"]["logger"] == "wandb" and payload["metrics"]["parity_ratio"]["median"] > 0
