"""Nothing lost: real training processes killed with SIGKILL and SIGTERM, then resumed.

A run killed with SIGKILL in its second epoch and resumed from `last.ckpt` must end with exactly the
weights of a run that was never interrupted (CPU, `trainer.deterministic=true`, same seed)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

EPOCHS = 3
STEPS_PER_EPOCH = 24
RUN = [
    "data=synthetic",
    f"data.synthetic_train_size={STEPS_PER_EPOCH * 32 + 256}",
    "data.val_size=256",
    "data.synthetic_test_size=64",
    "data.batch_size=32",
    "data.num_workers=0",
    "model.depth=6",
    "model.width=8",
    f"trainer.max_epochs={EPOCHS}",
    "trainer.deterministic=true",
    "trainer.enable_progress_bar=false",
    "stats.every_n_steps=10",
    "seed=5",
]


def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "template", "train", *args, f"runs_dir={tmp_path / 'runs'}"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=600)
    return process.returncode, stderr


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, (
            f"the run ended before {path.name} appeared: {process.stderr.read()[-2000:]}"
        )
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def step_of(run: Path) -> int:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"]


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("unbroken")
    code, stderr = finish(start(tmp_path, *RUN, "run_name=unbroken"))
    assert code == 0, stderr[-3000:]
    return tmp_path / "runs" / "unbroken"


@pytest.fixture(scope="module")
def unbroken_on_device(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("unbroken_on_device")
    code, stderr = finish(start(tmp_path, *RUN, "data.loader=device", "run_name=unbroken"))
    assert code == 0, stderr[-3000:]
    return tmp_path / "runs" / "unbroken"


@pytest.mark.parametrize("loader", ["torch", "device"])
def test_sigkill_in_epoch_two_then_resume_gives_the_unbroken_weights(tmp_path, request, loader):
    unbroken = request.getfixturevalue("unbroken" if loader == "torch" else "unbroken_on_device")
    run = tmp_path / "runs" / "killed"
    process = start(tmp_path, *RUN, f"data.loader={loader}", "run_name=killed")
    wait_for(run / "checkpoints" / "last.ckpt", process)  # epoch one is done: epoch two has begun
    process.send_signal(signal.SIGKILL)  # at once: on a fast machine an epoch here lasts under a second
    finish(process)
    assert process.returncode == -signal.SIGKILL
    assert step_of(run) == STEPS_PER_EPOCH, "the kill must land in epoch two for this test to mean anything"
    assert not (run / "summary.json").exists()
    killed_wandb = {path.name.rsplit("-", 1)[1] for path in run.glob("wandb/offline-run-*")}

    code, stderr = finish(start(tmp_path, f"resume={run}"))
    assert code == 0, stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == EPOCHS * STEPS_PER_EPOCH
    assert {summary["wandb_run_id"]} == killed_wandb  # the same W&B run, resumed
    assert [row["epoch"] for row in summary["epochs"]] == list(range(EPOCHS))
    expected, resumed = weights(unbroken), weights(run)
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(resumed[name], expected[name]), name


def test_sigterm_saves_last_checkpoint_and_an_interrupted_summary(tmp_path, unbroken):
    run = tmp_path / "runs" / "stopped"
    process = start(tmp_path, *RUN, "run_name=stopped")
    wait_for(run / "checkpoints" / "last.ckpt", process)  # epoch one is done
    time.sleep(0.2)  # a few steps into epoch two, well before the run ends
    process.send_signal(signal.SIGTERM)
    code, stderr = finish(process)
    assert code == 143, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == f"interrupted; continue with: make train RESUME={run}"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert STEPS_PER_EPOCH < summary["steps"] < EPOCHS * STEPS_PER_EPOCH
    assert step_of(run) == summary["steps"]  # last.ckpt written at the stop, mid-epoch

    code, stderr = finish(start(tmp_path, "resume=last"))
    assert code == 0, stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert step_of(run) == EPOCHS * STEPS_PER_EPOCH


def test_resume_from_a_truncated_checkpoint_is_refused(tmp_path, unbroken):
    run = tmp_path / "runs" / "copy"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text((unbroken / "config.yaml").read_text())
    data = (unbroken / "checkpoints" / "last.ckpt").read_bytes()
    (run / "checkpoints" / "last.ckpt").write_bytes(data[: len(data) // 2])
    code, stderr = finish(start(tmp_path, f"resume={run}"))
    assert code == 2
    assert stderr.startswith(f"error: checkpoint {run / 'checkpoints' / 'last.ckpt'} cannot be loaded (")
    assert stderr.count("\n") == 1
