"""The experiment logger a run writes to: W&B by default (offline, into the run folder), or Lightning's
TensorBoard or CSV logger. The variance monitor logs its scalars through whichever is chosen."""

from __future__ import annotations

import os
import secrets
import string
import sys
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf


def make_logger(cfg: DictConfig, run_dir: Path, resume_id: str | None = None) -> Logger | None:
    """The logger `logger.name` names, writing into the run folder; None for `none`."""
    return LOGGERS[cfg.logger.name](cfg, run_dir, resume_id)


def _wandb(cfg: DictConfig, run_dir: Path, resume_id: str | None) -> WandbLogger:
    # `mode=` and not `offline=True`: the latter sets WANDB_MODE for the whole process. `silent`: the run
    # announces its W&B run itself, before fit (template/run/info.py), instead of wandb's banners; the id
    # is drawn here so that it can, without starting wandb early (a resumed run's id may still be held
    # for a moment by the killed process's wandb service).
    _own_wandb_service()
    logger = WandbLogger(
        project=cfg.logger.project,
        group=cfg.logger.group,
        name=run_dir.name,
        save_dir=str(run_dir),
        mode=cfg.logger.mode,
        id=resume_id or _run_id(),
        resume="allow" if resume_id else None,
        config=OmegaConf.to_container(cfg, resolve=True),
        settings={"silent": True},
    )
    # Lightning always passes `anonymous` (None unless asked), and wandb warns that the setting "has no
    # effect" whatever its value; dropping the unset key keeps that warning, about nothing the user did, out.
    if logger._wandb_init.get("anonymous") is None:
        logger._wandb_init.pop("anonymous", None)
    return logger


def _run_id() -> str:
    """Eight lower-case letters and digits, as wandb draws its own run ids."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


LOGGERS = {
    "wandb": _wandb,
    "tensorboard": lambda cfg, run_dir, resume_id: TensorBoardLogger(run_dir, name="tensorboard", version=""),
    "csv": lambda cfg, run_dir, resume_id: CSVLogger(run_dir, name="csv", version=""),
    "none": lambda cfg, run_dir, resume_id: None,
}


def available() -> list[str]:
    return list(LOGGERS)


def _own_wandb_service() -> None:
    """Start this run's own W&B service rather than join one a parent process exported.

    wandb shares its service with child processes through WANDB_SERVICE. A run registered in a parent's
    service (a notebook or a test that used wandb, then ran `make train`) has its file closed when that
    parent's service gets round to it, and a process that does not own its service cannot wait for it:
    `make train` would return with the last block of its run file not yet on disk."""
    os.environ.pop("WANDB_SERVICE", None)


def finish_logger(logger: Logger | None) -> None:
    """Lightning never calls `wandb.finish()`, so a W&B run is finished here."""
    if isinstance(logger, WandbLogger) and logger._experiment is not None:
        close_wandb()


def close_wandb() -> None:
    """Finish the open W&B run, if any, and wait until its file is complete on disk.

    `wandb.finish()` returns once the run's exit is recorded, but the service closes the file (writing
    its last 32 KiB block) only after that, on its own time; `wandb.teardown()` waits for the service to
    end, so the run folder is whole when `train` returns. The next run starts a fresh service."""
    if "wandb" not in sys.modules:
        return
    import wandb

    if wandb.run is not None:
        wandb.finish()
    wandb.teardown()


def wandb_run_id(logger: Logger | None) -> str | None:
    return logger.experiment.id if isinstance(logger, WandbLogger) else None
