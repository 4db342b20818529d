"""Nothing lost: real training processes killed with SIGKILL and SIGTERM mid-epoch, then resumed, with
the defaults a user gets (data.loader=torch with 2 workers, the cosine schedule, W&B offline), and with
the on-device loader.

Each resumed run must end with exactly the weights (and optimizer state) of a run that was never
interrupted: CPU, `trainer.deterministic=true`, the same seed, torch.equal on every tensor."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.helpers.provenance_check import assert_true_provenance

pytestmark = pytest.mark.slow

EPOCHS = 3
STEPS_PER_EPOCH = 24
EVERY = 5  # checkpoint.every_n_steps: last.ckpt mid-epoch, where the kills land
RUN = [
    "data=synthetic",
    f"data.synthetic_train_size={STEPS_PER_EPOCH * 32 + 256}",
    "data.val_size=256",
    "data.synthetic_test_size=64",
    "data.batch_size=32",
    "model.depth=6",
    "model.width=8",
    f"trainer.max_epochs={EPOCHS}",
    "trainer.deterministic=true",
    "trainer.enable_progress_bar=false",
    f"checkpoint.every_n_steps={EVERY}",
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
        start_new_session=True,  # its own process group, which a SIGKILL of the job takes down whole
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=600)
    return process.returncode, stderr


def completed(tmp_path: Path, *args: str) -> str:
    code, stderr = finish(start(tmp_path, *args))
    assert code == 0, stderr[-3000:]
    return stderr


def assert_resumed_from(stderr: str, run: Path) -> None:
    """Lightning's own words: the run went on from the checkpoint, it did not start over."""
    assert f"Restoring states from the checkpoint path at {run / 'checkpoints' / 'last.ckpt'}" in stderr


def checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def wait_for_step(run: Path, process: subprocess.Popen, reached, timeout: float = 300) -> None:
    """Poll last.ckpt until its global step satisfies `reached` (a file being written fails to load)."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"the run ended first: {process.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"{run} never reached the step"
        try:
            if reached(checkpoint(run)["global_step"]):
                return
        except (OSError, RuntimeError, EOFError, KeyError):
            pass
        time.sleep(0.01)


def in_epoch_two(step: int) -> bool:
    return STEPS_PER_EPOCH < step <= STEPS_PER_EPOCH + 3 * EVERY


def assert_same_final_state(run: Path, unbroken: Path) -> None:
    expected, resumed = checkpoint(unbroken), checkpoint(run)
    assert resumed["global_step"] == expected["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert expected["state_dict"].keys() == resumed["state_dict"].keys()
    for name, tensor in expected["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], tensor), name
    for index, state in expected["optimizer_states"][0]["state"].items():
        assert torch.equal(
            resumed["optimizer_states"][0]["state"][index]["momentum_buffer"], state["momentum_buffer"]
        )
    assert resumed["lr_schedulers"] == expected["lr_schedulers"]


def unbroken_run(tmp_path_factory, name: str, *args: str) -> Path:
    tmp_path = tmp_path_factory.mktemp(name)
    arguments = [*RUN, *args, "run_name=unbroken", f"runs_dir={tmp_path / 'runs'}"]
    completed(tmp_path, *arguments[:-1])
    run = tmp_path / "runs" / "unbroken"
    assert_true_provenance(
        OmegaConf.to_container(OmegaConf.load(run / "config.yaml").provenance),
        ["-m", "template", "train", *arguments],
    )
    return run


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory) -> Path:
    return unbroken_run(tmp_path_factory, "unbroken")


@pytest.fixture(scope="module")
def unbroken_on_device(tmp_path_factory) -> Path:
    return unbroken_run(tmp_path_factory, "unbroken_on_device", "data.loader=device")


@pytest.mark.parametrize("loader", ["torch", "device"])
def test_sigkill_mid_epoch_then_resume_gives_the_unbroken_weights(tmp_path, request, loader):
    unbroken = request.getfixturevalue("unbroken" if loader == "torch" else "unbroken_on_device")
    run = tmp_path / "runs" / "killed"
    process = start(tmp_path, *RUN, f"data.loader={loader}", "run_name=killed")
    wait_for_step(run, process, in_epoch_two)
    # The job dies whole, as under the OOM killer or a scheduler: the trainer, its loader workers and its
    # W&B process. (Killing the trainer alone leaves W&B's process holding the run for a while, and a
    # resume that starts at once is refused with "run ID ... is in use".)
    os.killpg(process.pid, signal.SIGKILL)
    finish(process)
    assert process.returncode == -signal.SIGKILL
    step = checkpoint(run)["global_step"]
    assert step % STEPS_PER_EPOCH and step % EVERY == 0, f"last.ckpt at step {step} is not mid-epoch"
    assert not (run / "summary.json").exists()
    killed_wandb = {path.name.rsplit("-", 1)[1] for path in run.glob("wandb/offline-run-*")}

    assert_resumed_from(completed(tmp_path, f"resume={run}"), run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == EPOCHS * STEPS_PER_EPOCH
    assert {summary["wandb_run_id"]} == killed_wandb  # the same W&B run, resumed
    assert [row["epoch"] for row in summary["epochs"]] == list(range(EPOCHS))
    assert_same_final_state(run, unbroken)


def test_sigterm_mid_epoch_saves_a_checkpoint_that_resumes_to_the_unbroken_weights(tmp_path, unbroken):
    run = tmp_path / "runs" / "stopped"
    process = start(tmp_path, *RUN, "checkpoint.every_n_steps=0", "run_name=stopped")
    wait_for_step(run, process, lambda step: step == STEPS_PER_EPOCH)  # epoch one's last.ckpt
    time.sleep(0.3)  # a few steps into epoch two
    process.send_signal(signal.SIGTERM)
    code, stderr = finish(process)
    assert code == 143, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == f"interrupted; continue with: make train RESUME={run}"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert STEPS_PER_EPOCH < summary["steps"] < 2 * STEPS_PER_EPOCH, "the signal must land in epoch two"
    assert checkpoint(run)["global_step"] == summary["steps"]  # last.ckpt written at the signal

    assert_resumed_from(completed(tmp_path, "resume=last"), run)
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert_same_final_state(run, unbroken)


def test_extending_a_run_within_its_warm_up_equals_the_run_planned_that_long(tmp_path, tmp_path_factory):
    """The documented rule: an extended run follows the longer plan, exact while the cosine is still in
    its warm-up (here: a 1-epoch run with a 1-epoch warm-up, extended to 3 epochs)."""
    planned = unbroken_run(tmp_path_factory, "planned", "scheduler.warmup_epochs=1")
    run = tmp_path / "runs" / "short"
    completed(tmp_path, *RUN, "scheduler.warmup_epochs=1", "trainer.max_epochs=1", "run_name=short")
    assert_resumed_from(completed(tmp_path, f"resume={run}", f"trainer.max_epochs={EPOCHS}"), run)
    assert_same_final_state(run, planned)

    code, stderr = finish(start(tmp_path, f"resume={run}", f"trainer.max_epochs={EPOCHS + 1}"))
    assert code == 2 and stderr.count("\n") == 1
    assert stderr.startswith(
        f"error: resume: trainer.max_epochs={EPOCHS + 1}, trainer.max_steps=-1 would change"
    )


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
