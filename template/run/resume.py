"""Continuing a run: `RESUME=<run folder>` or `RESUME=last`.

A resumed run is the same experiment: it reloads the folder's saved config, takes only the overrides
that cannot change the science (more epochs, where the data lies, how many loader workers), and goes
on from `checkpoints/last.ckpt` in the same folder and the same W&B run.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from template.errors import UsageError
from template.run.info import dotted

# Keys a resumed run may change; everything else would make it a different experiment.
MAY_CHANGE = (
    "resume",
    "runs_dir",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.enable_progress_bar",
    "data.root",
    "data.num_workers",
    "checkpoint.every_n_steps",
    "logger.mode",
)


def find_run(resume: str, runs_dir: str) -> Path:
    """The run folder `resume` names, checked to be one that can be continued."""
    if resume == "last":
        configs = sorted(Path(runs_dir).glob("*/config.yaml"), key=lambda path: path.stat().st_mtime)
        if not configs:
            raise UsageError(f"resume=last: there is no run under {runs_dir}/ to continue")
        run = configs[-1].parent
    else:
        run = Path(resume)
        if not (run / "config.yaml").is_file():
            raise UsageError(
                f"resume={resume!r} is not a run folder (it has no config.yaml); "
                f"give a folder under {runs_dir}/, or last for the newest"
            )
    if not last_checkpoint(run).is_file():
        raise UsageError(f"resume={str(run)!r} has no checkpoints/last.ckpt to continue from")
    return run.resolve()


def last_checkpoint(run: Path) -> Path:
    return run / "checkpoints" / "last.ckpt"


def check_unchanged(saved: DictConfig, resumed: DictConfig, run: Path) -> None:
    """Refuse overrides that would turn the resumed run into another experiment."""
    before = dotted(OmegaConf.to_container(saved, resolve=True))
    after = dotted(OmegaConf.to_container(resumed, resolve=True))
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old != new and key not in MAY_CHANGE:
            raise UsageError(
                f"resume: {key}={new!r} would change the experiment of {run.name} (it ran with {old!r}); "
                f"only {', '.join(MAY_CHANGE[2:])} may change"
            )
    old_epochs, new_epochs = before.get("trainer.max_epochs"), after.get("trainer.max_epochs")
    if old_epochs is not None and new_epochs is not None and new_epochs < old_epochs:
        raise UsageError(
            f"resume: trainer.max_epochs={new_epochs} is fewer than the {old_epochs} of {run.name}; "
            "it may only grow"
        )


def newest_checkpoint(run: Path) -> Path | None:
    """What a continued run starts from: `last.ckpt` (written at every epoch end, every
    `checkpoint.every_n_steps`, and at the step boundary where a signal stopped the run), or None where
    the folder has none (a job pre-empted before its first checkpoint)."""
    path = last_checkpoint(run)
    return path if path.is_file() else None


def check_checkpoint(run: Path, path: Path | None = None) -> dict:
    """A checkpoint that does not load is refused up front, not half-way into restoring it; returns it.

    `weights_only=True` loads tensors and plain containers without running pickled code; Lightning's
    checkpoints are of that kind.
    """
    path = path or last_checkpoint(run)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to load means the same thing to the user
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise UsageError(
            f"checkpoint {path} cannot be loaded ({reason}); delete it and resume from another "
            f"checkpoint in {path.parent}, or start a new run"
        ) from None


def wandb_run_id(run: Path) -> str | None:
    """The id of the folder's W&B run, read from its `wandb/<mode>-run-<time>-<id>` directory name."""
    folders = sorted(run.glob("wandb/*run-*-*"))
    return folders[0].name.rsplit("-", 1)[1] if folders else None
