"""SLURM pre-emption: the warning signal (`#SBATCH --signal=SIGUSR1@90`) stops the run as SIGTERM does,
then requeues the job; the requeued job re-runs the same command and continues the same run folder
(`run_folder.requeued`), from the checkpoint written at the signal, into the same W&B run.

Lightning's own handler (SLURMEnvironment's auto-requeue) is switched off in its favour: it saves a
checkpoint from inside the signal handler, which can land half-way into an optimizer step, and its
barrier there can meet another rank's gradient all-reduce. Here the handler only raises a flag —
Lightning's SIGTERM flag, which rank 0 broadcasts to every rank at the start of each step — so all
ranks stop at the same step boundary, where `train.Summary` writes `last.ckpt`; rank 0 then asks SLURM
to requeue the job.
"""

from __future__ import annotations

import os
import signal
import subprocess

from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_warn


def plugins() -> list:
    """The Trainer plugins that leave the requeue signal to `Requeue` (none outside SLURM)."""
    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


class Requeue(Callback):
    def __init__(self):
        self.requested = False
        self._previous = None

    def on_fit_start(self, trainer, pl_module) -> None:
        if SLURMEnvironment.detect():
            self._previous = signal.signal(signal.SIGUSR1, lambda *_: self._request(trainer))

    def _request(self, trainer) -> None:
        self.requested = True
        trainer._signal_connector.received_sigterm = True  # Lightning's stop-at-the-next-step flag

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """After `Summary.on_exception` (listed before this callback) wrote last.ckpt."""
        if self.requested and trainer.is_global_zero:
            array = os.environ.get("SLURM_ARRAY_JOB_ID")
            job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]
            try:
                subprocess.run(["scontrol", "requeue", job], check=True, timeout=60)
            except (OSError, subprocess.SubprocessError) as error:
                rank_zero_warn(f"could not requeue SLURM job {job} ({error}); resubmit it to continue")

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGUSR1, self._previous)
            self._previous = None
