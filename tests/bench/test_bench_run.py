"""`make bench` end to end, tiny: one call runs every measurement twice, interleaved, and writes
bench.json. Timings on a shared CI machine are noise, so nothing here asserts a speed: the targets live
in the benchmark. What is asserted is what makes the numbers mean something: the schema, positive
finite ratios, both sides of each lockstep comparison (template, template without the monitor, bare
Lightning) doing the same work step for step (every step's loss, and the weights after the last step,
with weight decay and train's speed_up), the bare side having nothing of the template's, the plain loop
really training, and the two taking turns."""

import contextlib
import io
import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import torch

from template import config
from template.__main__ import main as cli_main
from template.bench import main, timing
from template.bench.bare import Bare, bare_side
from template.bench.timing import Setup, side_by_side
from tests.helpers.provenance_check import assert_true_provenance
from tests.helpers.tiny import tiny

REPO = Path(__file__).resolve().parent.parent.parent
REPEATS, STEPS, BATCH = 2, 3, 16
TINY = tiny(  # the training config's keys: the same dialect as train
    "model=plain",
    "model.depth=3",
    f"data.batch_size={BATCH}",
    f"bench.steps={STEPS}",
    "bench.warmup=1",
    f"bench.repeats={REPEATS}",
    "bench.loader_size=256",
    "trainer.accelerator=cpu",
)


def run_bench(tmp_path, *extra) -> tuple[dict, str]:
    """bench.json's content and what was printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*TINY, *extra, f"runs_dir={tmp_path}"]) == 0
    (path,) = tmp_path.glob("bench-*/bench.json")
    return json.loads(path.read_text()), printed.getvalue()


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Every measurement but the start-up probe, a fresh process each time: `make bench` below runs it."""
    return run_bench(tmp_path_factory.mktemp("bench"), "logger=none", "bench.startup=false")


def test_bench_json_records_machine_command_and_every_repeat(bench):
    payload, _ = bench
    assert payload["command"].startswith("python -m template bench " + " ".join(TINY))
    assert {"cpu", "gpu", "torch", "threads", "device"} <= payload["hardware"].keys()
    assert payload["options"]["bench"]["repeats"] == REPEATS and payload["date"]
    assert_true_provenance(payload["provenance"])
    assert payload["options"]["model"]["depth"] == 3 and payload["options"]["data"]["batch_size"] == BATCH
    expected = {"plain", "template", "plain_no_monitor", "template_no_monitor"}
    expected |= {"bare", "plain_bare"}
    expected |= {"loader_device", "loader_torch", "loader_pil"}
    assert set(payload["measurements"]) == expected
    for repeats in payload["measurements"].values():  # every repetition's record, in order
        assert len(repeats) == REPEATS


def test_headline_numbers_are_positive_finite_with_targets(bench):
    metrics = bench[0]["metrics"]
    names = ("parity_ratio", "parity_cpu_ratio", "monitor_overhead_ratio", "monitor_overhead_cpu_ratio")
    names += ("loader_speedup",)
    for name in names:
        entry = metrics[name]
        assert len(entry["repeats"]) == REPEATS
        assert all(math.isfinite(value) and value > 0 for value in entry["repeats"])
        assert entry["min"] <= entry["median"] <= entry["max"]
        assert 0 <= entry["iqr"] <= entry["max"] - entry["min"]
        assert entry["target"] and isinstance(entry["met"], bool)
    for name in ("loader_speedup_vs_pil", "torch_loader_vs_pil", "plain_images_per_s"):
        assert all(math.isfinite(value) and value > 0 for value in metrics[name]["repeats"])
    for name in ("bare_lightning_ratio", "bare_lightning_cpu_ratio", "template_vs_bare_ratio"):
        assert all(math.isfinite(value) and value > 0 for value in metrics[name]["repeats"])


def test_cpu_seconds_cover_the_window(bench):
    """CPU seconds are counted over the same window as wall time: positive, and at most what all the
    machine's cores could have given in that time."""
    for name in ("plain", "template", "plain_no_monitor", "template_no_monitor", "bare", "plain_bare"):
        for record in bench[0]["measurements"][name]:
            assert 0 < record["cpu_seconds"] <= record["seconds"] * (os.cpu_count() or 1) * 1.05 + 0.05
            assert record["images_per_cpu_s"] == pytest.approx(record["images"] / record["cpu_seconds"])


def test_both_sides_train_the_same_images_the_same_way(bench):
    measurements = bench[0]["measurements"]
    for plain_side, side in (
        ("plain", "template"),
        ("plain_no_monitor", "template_no_monitor"),
        ("plain_bare", "bare"),
    ):
        sides = measurements[plain_side], measurements[side]
        for plain, template in zip(*sides, strict=True):
            assert plain["images"] == template["images"] == STEPS * BATCH
            # same weights, batches, optimizer and schedule: the same losses, step for step
            assert len(plain["losses"]) == 1 + STEPS + 1  # warm-up, window, and the step that closes it
            assert template["losses"] == pytest.approx(plain["losses"], rel=1e-5)
    # every lockstep run starts from the same weights on the same batches
    assert measurements["template"][0]["losses"] == pytest.approx(
        measurements["plain_no_monitor"][1]["losses"]
    )


@pytest.mark.parametrize(
    "compile_model",
    [False, pytest.param(True, marks=pytest.mark.slow, id="compiled")],  # inductor: minutes on 2 cores
    ids=["eager", "compiled"],
)
def test_same_work_step_for_step_with_weight_decay_and_speed_up(tmp_path, compile_model):
    """Every step's loss and the final weights of the plain loop and the template (monitor on), with
    weight decay and train's speed_up (on a CPU: `model.compile`; channels_last and cuDNN autotuning are
    a GPU's): both sides run the same optimizer, schedule and compiled graph."""
    keys = [*TINY, "optimizer.weight_decay=0.01", f"model.compile={str(compile_model).lower()}"]
    setup = Setup.create(config.load([*keys, "logger=none", "stats.every_n_steps=2"]), torch.device("cpu"))
    pair = side_by_side(setup, True, tmp_path / "template")
    assert len(pair.template["losses"]) == len(pair.plain["losses"]) == len(setup.batches)
    assert pair.template["losses"] == pytest.approx(pair.plain["losses"], rel=1e-5)
    trained, reference = pair.template_model.state_dict(), pair.plain_model.state_dict()
    assert trained.keys() == reference.keys()
    for name, value in reference.items():
        torch.testing.assert_close(trained[name], value, rtol=1e-5, atol=1e-7, msg=name)
    # the decay acted: the same plain run without it ends elsewhere
    keys[-2] = "optimizer.weight_decay=0"
    undecayed = side_by_side(
        Setup.create(config.load([*keys, "logger=none"]), torch.device("cpu")), False, tmp_path / "u"
    )
    assert any(
        not torch.allclose(undecayed.plain_model.state_dict()[name], value)
        for name, value in reference.items()
    )


def test_the_bare_side_is_lightning_with_nothing_of_the_templates(monkeypatch, tmp_path):
    """Its Trainer holds the lockstep's callback and nothing else — no monitor, logger, progress bar or
    checkpoints — around a LightningModule that is the plain loop's step; and it does the plain loop's
    work: the same losses and, after the last step, the same weights."""
    seen = []
    monkeypatch.setattr(timing.Lockstep, "on_fit_start", lambda self, trainer, module: seen.append(trainer))
    keys = [*TINY, "optimizer.weight_decay=0.01", "logger=wandb"]  # a logger the bare side must not use
    setup = Setup.create(config.load(keys), torch.device("cpu"))
    pair = bare_side(setup, tmp_path)
    (trainer,) = seen
    assert [type(c) for c in trainer.callbacks] == [timing.Lockstep]
    assert trainer.logger is None and trainer.progress_bar_callback is None
    assert trainer.checkpoint_callback is None and type(trainer.lightning_module) is Bare
    assert pair.template["losses"] == pytest.approx(pair.plain["losses"], rel=1e-5)
    trained, reference = pair.template_model.state_dict(), pair.plain_model.state_dict()
    for name, value in reference.items():
        torch.testing.assert_close(trained[name], value, rtol=1e-5, atol=1e-7, msg=name)


def test_plain_loop_really_trains(bench):
    for plain in bench[0]["measurements"]["plain"]:
        assert plain["weight_change"] > 0
        assert plain["loss_last"] < plain["loss_first"]


def test_loaders_deliver_the_whole_set(bench):
    for name in ("loader_device", "loader_torch"):
        for record in bench[0]["measurements"][name]:
            assert record["images"] == 256 and record["images_per_s"] > 0


def test_table_is_printed(bench):
    printed = bench[1]
    assert "parity_ratio" in printed and "loader_speedup" in printed and "bench.json:" in printed


def test_bad_key_is_the_configs_one_line_refusal(capsys):
    """Through the command line's `main`, in this process (tests/test_train_cli.py runs the real one)."""
    assert cli_main(["bench", "bench.stepz=3"]) == 2
    assert capsys.readouterr().err == (
        "error: unknown config key 'bench.stepz'; valid keys here: "
        "steps, warmup, turn_steps, repeats, threads, loader_size, startup, mfu_batch_size, peak_tflops\n"
    )


def test_make_bench_depth_changes_the_measured_depth_and_times_a_fresh_start(tmp_path):
    """DEPTH is a Make variable of every command: here model.depth of the bench's model. The start-up
    probe (a fresh `python -m template train` to its first step) is timed here, through make."""
    keys = [key for key in TINY if not key.startswith(("model.depth", "bench.repeats"))]
    args = " ".join([*keys, "bench.repeats=1", "logger=none", f"runs_dir={tmp_path}"])
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "bench", "DEPTH=30", f"ARGS={args}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (path,) = tmp_path.glob("bench-*/bench.json")
    payload = json.loads(path.read_text())
    assert payload["options"]["model"]["depth"] == 30 and "model.depth=30" in payload["command"]
    (startup,) = payload["measurements"]["startup"]
    assert 0 < startup["seconds"] == payload["metrics"]["startup_s"]["median"]


@pytest.mark.slow
def test_default_logger_wandb_offline(tmp_path):
    payload, _ = run_bench(tmp_path, "bench.repeats=1", "bench.startup=false", "logger=wandb")
    assert (
        payload["options"]["logger"]["name"] == "wandb" and payload["metrics"]["parity_ratio"]["median"] > 0
    )
