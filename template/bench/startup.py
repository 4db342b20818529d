"""`startup_s`: seconds from `python -m template train ...` being launched to its first training step.

Measured in a fresh process, since in this one everything is imported already. The parent reads the
wall clock just before it starts the child; the child runs the ordinary CLI with one addition: the
LightningModule hook `on_train_batch_start` of `Classifier` prints the wall clock the first time it
runs, which is after Lightning's callbacks' own `on_train_batch_start` and just before the first
forward pass. Same machine, same clock, so the difference is everything a user waits for: the
interpreter, the imports, config validation, the synthetic data, the model and its init, the run
folder, W&B's offline run, the Trainer, the sanity-check validation and the loader's workers.

The child trains one step (`trainer.max_steps=1`) on `data=synthetic` with everything else at its
defaults, W&B offline included, into a temporary `runs_dir`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import template
from template.run_folder import RUN_DIR_ENV

MARK = "BENCH_FIRST_STEP"

# Run with `python -c`: the child imports only what `python -m template` imports, not the bench.
PROBE = f"""
import sys
import time

from template.module import Classifier


def first_step(self, batch, batch_idx):
    if not getattr(Classifier, "_bench_seen", False):
        Classifier._bench_seen = True
        print("{MARK}", repr(time.time()), flush=True)


Classifier.on_train_batch_start = first_step
from template.__main__ import main

sys.exit(main(sys.argv[1:]))
"""


def command(model: str, depth: int, width: int, accelerator: str, runs_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        PROBE,
        "train",
        "data=synthetic",
        f"model={model}",
        f"model.depth={depth}",
        f"model.width={width}",
        f"trainer.accelerator={accelerator}",
        "trainer.max_steps=1",
        "trainer.limit_val_batches=2",  # the sanity check's two batches; keeps the run's end short
        f"runs_dir={runs_dir}",
    ]


def measure(model: str, depth: int, width: int, accelerator: str, runs_dir: Path) -> float:
    """Seconds to the first step of one fresh training process."""
    env = {key: value for key, value in os.environ.items() if key != RUN_DIR_ENV}
    project_root = Path(template.__file__).resolve().parent.parent
    started = time.time()
    result = subprocess.run(
        command(model, depth, width, accelerator, runs_dir),
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    marks = [line.split()[1] for line in result.stdout.splitlines() if line.startswith(MARK)]
    if result.returncode != 0 or not marks:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"startup probe failed (exit code {result.returncode}): {' | '.join(tail)}")
    return float(marks[0]) - started
