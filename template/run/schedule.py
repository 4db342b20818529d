"""The learning-rate schedule — a linear warm-up, then cosine decay to zero, per step — and the rule for a
resumed run that is extended (`RESUME=... EPOCHS=<more>`, or a larger `trainer.max_steps`).

The rule: an extended run follows the schedule of a run planned for the new length from the start.
That makes it exactly that run (the same weights, bit for bit) whenever the steps already taken followed
the new plan too: always with `scheduler.name=none`, and with the cosine while it is still in its
warm-up, whose rates do not depend on the planned length. Once the cosine has begun to decay, the steps
taken followed the shorter plan's curve: continuing on the longer curve would jump the rate up, and
replaying the old curve past its end (what Lightning's restored scheduler does) is a warm restart —
either way a different experiment from any planned run, so the extension is refused in one line before
anything starts. Each checkpoint records the plan it was made under (`checkpoint["schedule"]`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from omegaconf import DictConfig

from template.errors import UsageError


def plan(trainer, warmup_epochs: int) -> dict:
    """Steps of the whole run, of one epoch and of the warm-up, as the Trainer will take them."""
    total = max(1, int(trainer.estimated_stepping_batches))  # builds the training loader: epoch length known
    per_epoch = max(1, math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches))
    return {"total_steps": total, "steps_per_epoch": per_epoch, "warmup_steps": warmup_epochs * per_epoch}


def cosine(optimizer: torch.optim.Optimizer, steps: dict):
    total, warmup = steps["total_steps"], steps["warmup_steps"]
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup))
    if not warmup:
        return decay
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, 1e-3, 1.0, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, decay], milestones=[warmup])


def stretch(saved_scheduler: dict, steps: dict) -> None:
    """Rewrite a checkpoint's cosine (still in its warm-up, as `check_extension` ensured) for the new
    length: its decay has not taken a step, so only its period differs from the longer plan's."""
    if "_schedulers" in saved_scheduler:  # SequentialLR: [warm-up, cosine]
        saved_scheduler["_schedulers"][1]["T_max"] = max(1, steps["total_steps"] - steps["warmup_steps"])


def check_extension(cfg: DictConfig, checkpoint: dict, run: Path) -> None:
    """Refuse a resume whose new length would change a cosine schedule that has begun to decay."""
    saved = checkpoint.get("schedule")
    if cfg.scheduler.name != "cosine" or saved is None:
        return
    total = planned_total(cfg.trainer, saved["steps_per_epoch"])
    step, warmup = checkpoint["global_step"], saved["warmup_steps"]
    if total == saved["total_steps"] or step <= warmup:
        return
    raise UsageError(
        f"resume: trainer.max_epochs={cfg.trainer.get('max_epochs')}, trainer.max_steps="
        f"{cfg.trainer.get('max_steps', -1)} would change the cosine schedule of {run.name} from "
        f"{saved['total_steps']} to {total} steps after {step} steps decayed on the old curve (the rate "
        f"depends on the planned length once the {warmup}-step warm-up is over), so the result would equal "
        "no planned run; resume without changing the length, or start a new run planned that long"
    )


def planned_total(trainer: DictConfig, steps_per_epoch: int) -> int:
    """`Trainer.estimated_stepping_batches` for these max_epochs / max_steps, without a Trainer."""
    limits = []
    if trainer.get("max_steps", -1) not in (None, -1):
        limits.append(trainer.max_steps)
    if trainer.get("max_epochs") not in (None, -1):
        limits.append(trainer.max_epochs * steps_per_epoch)
    return max(1, min(limits)) if limits else 0
