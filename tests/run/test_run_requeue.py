"""SLURM pre-emption with two ranks, simulated: the SLURM_* variables srun sets for each task, the
warning signal (SIGUSR1, `#SBATCH --signal=SIGUSR1@90`), a stand-in `scontrol` that records the
requeue, and the requeued job re-run with the same command and `SLURM_RESTART_COUNT=1`.

The requeued job must continue in the same run folder on both ranks, from the checkpoint written at the
signal, into the same W&B run, and end with exactly the weights of an unbroken two-rank job."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

EPOCHS = 3
STEPS_PER_EPOCH = 12  # per rank: 2 ranks x 12 batches of 16
RUN = [
    "data=synthetic",
    f"data.synthetic_train_size={STEPS_PER_EPOCH * 2 * 16 + 64}",
    "data.val_size=64",
    "data.synthetic_test_size=32",
    "data.batch_size=16",
    "model.depth=5",
    "model.width=4",
    f"trainer.max_epochs={EPOCHS}",
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "trainer.strategy=ddp",
    "trainer.deterministic=true",
    "trainer.enable_progress_bar=false",
    "stats.every_n_steps=5",
    "checkpoint.every_n_steps=2",  # last.ckpt mid-epoch too: the test waits for a step in epoch two
    "seed=3",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def srun(tmp_path: Path, job: str, restarts: int) -> list[subprocess.Popen]:
    """Both tasks of a one-node, two-task SLURM job step, as srun starts them."""
    port = free_port()
    processes = []
    for rank in range(2):
        env = dict(
            os.environ,
            SLURM_JOB_ID=job,
            SLURM_JOB_NAME="train",
            SLURM_NTASKS="2",
            SLURM_NTASKS_PER_NODE="2",
            SLURM_NNODES="1",
            SLURM_NODEID="0",
            SLURM_PROCID=str(rank),
            SLURM_LOCALID=str(rank),
            SLURM_RESTART_COUNT=str(restarts),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        )
        command = [sys.executable, "-m", "template", "train", *RUN, f"runs_dir={tmp_path / 'runs'}"]
        processes.append(
            subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    return processes


def wait(processes: list[subprocess.Popen]) -> list[int]:
    codes = []
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        codes.append(process.returncode)
        process.stderr_text = stderr
    return codes


def checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


@pytest.fixture
def scontrol(tmp_path) -> Path:
    """A stand-in for SLURM's scontrol on PATH that records its arguments."""
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "scontrol"
    script.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    script.chmod(0o755)
    return tmp_path / "scontrol.log"


def _last_step(run) -> int:
    """last.ckpt's global step, or 0 while there is none or it is being written (a partial file fails)."""
    try:
        return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)[
            "global_step"
        ]
    except (OSError, RuntimeError, EOFError, KeyError):
        return 0


def test_requeued_job_continues_the_same_folder_and_run_on_both_ranks(tmp_path, scontrol):
    processes = srun(tmp_path, "1000", restarts=0)
    assert wait(processes) == [0, 0], [p.stderr_text[-2000:] for p in processes]
    unbroken = tmp_path / "runs" / "job1000-kaiming-plain5-synthetic-s3"

    run = tmp_path / "runs" / "job4242-kaiming-plain5-synthetic-s3"
    processes = srun(tmp_path, "4242", restarts=0)
    deadline = time.monotonic() + 300
    while not STEPS_PER_EPOCH < _last_step(run) <= STEPS_PER_EPOCH + 4:  # a few steps into epoch two
        assert all(p.poll() is None for p in processes), [p.communicate()[1][-2000:] for p in processes]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for process in processes:  # SLURM signals every task of the step
        process.send_signal(signal.SIGUSR1)
    assert wait(processes) == [143, 143], [p.stderr_text[-2000:] for p in processes]
    assert scontrol.read_text() == "requeue 4242\n"
    interrupted = json.loads((run / "summary.json").read_text())
    assert interrupted["status"] == "interrupted"
    signal_step = checkpoint(run)["global_step"]
    assert signal_step == interrupted["steps"] and STEPS_PER_EPOCH < signal_step < 2 * STEPS_PER_EPOCH
    first_wandb = {path.name.rsplit("-", 1)[1] for path in run.glob("wandb/offline-run-*")}

    processes = srun(tmp_path, "4242", restarts=1)  # the requeued job: the same command again
    assert wait(processes) == [0, 0], [p.stderr_text[-2000:] for p in processes]
    assert f"Restoring states from the checkpoint path at {run / 'checkpoints' / 'last.ckpt'}" in (
        processes[0].stderr_text
    )
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == [unbroken.name, run.name]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == EPOCHS * STEPS_PER_EPOCH
    assert [row["epoch"] for row in summary["epochs"]] == list(range(EPOCHS))
    assert {path.name.rsplit("-", 1)[1] for path in run.glob("wandb/offline-run-*")} == first_wandb
    assert summary["wandb_run_id"] in first_wandb and len(first_wandb) == 1
    expected, resumed = checkpoint(unbroken)["state_dict"], checkpoint(run)["state_dict"]
    assert expected.keys() == resumed.keys()
    for name, tensor in expected.items():
        assert torch.equal(resumed[name], tensor), name
