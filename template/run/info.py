"""What a run says before it starts (as nanoGPT prints its overrides): one short block on stdout with the
run folder, the config keys that differ from the defaults, the device and precision, and the W&B run —
and none of the libraries' messages meant for their own developers.

The block is printed by global rank 0 once the Trainer exists (so the device is Lightning's own choice)
and before `fit`. What is kept quiet, and why each is safe to silence:
- wandb's banners and end-of-run summary (`silent`): the block names the offline run and how to upload
  it; its warning that "the anonymous setting has no effect" is about an argument Lightning's
  WandbLogger always passes, not about anything the user set.
- Lightning's deprecation warning about `LeafSpec`: Lightning's own use of a torch API; and its note that
  it loads the training loader "to estimate number of stepping batches" (for the cosine schedule).
- Lightning's model summary, whose FLOPs column reads 0 without an example input (`trainer.
  enable_model_summary=true` brings it back); the block gives the parameter count instead.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from template.schema import Config

QUIET_WARNINGS = (r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",)
QUIET_INFO = ("to estimate number of stepping batches",)  # Lightning's note when the schedule asks its length


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in QUIET_INFO)


def quiet_libraries() -> None:
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # where rank_zero_info writes
    if not any(isinstance(existing, _Drop) for existing in rank_zero.filters):
        rank_zero.addFilter(_Drop())


def changed_keys(cfg: DictConfig) -> list[str]:
    """`key=value` for every key whose value differs from configs/default.yaml's (experiment included)."""
    from template.config import CONFIGS_DIR

    defaults = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(CONFIGS_DIR / "default.yaml"))
    ours, theirs = dotted(OmegaConf.to_container(cfg)), dotted(OmegaConf.to_container(defaults))
    return [f"{key}={value}" for key, value in ours.items() if theirs.get(key, object()) != value]


def dotted(tree, prefix: str = "") -> dict:
    """A config's leaves by dotted key (`stats.band_level`), from its plain container; an empty section
    is a leaf of its own."""
    if isinstance(tree, dict) and tree:
        return {k: v for key, value in tree.items() for k, v in dotted(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


def block(cfg: DictConfig, trainer, model, logger: Logger | None, run_dir: Path) -> str:
    params = sum(p.numel() for p in model.parameters())
    devices = f"{trainer.num_devices} x {trainer.strategy.root_device}" + (
        f" on {trainer.num_nodes} nodes" if trainer.num_nodes > 1 else ""
    )
    lines = [
        f"run folder: {run_dir}",
        f"overrides:  {' '.join(changed_keys(cfg)) or 'none (the defaults)'}",
        f"model:      {cfg.model.name}, depth {cfg.model.depth}, {params:,} parameters; init {cfg.init.name}",
        f"device:     {devices}, precision {trainer.precision}",
        f"logger:     {_logger_line(cfg, logger)}",
    ]
    return "\n".join(lines)


def _logger_line(cfg: DictConfig, logger: Logger | None) -> str:
    if logger is None:
        return "none"
    if isinstance(logger, WandbLogger):  # named, not started: wandb starts with fit
        run_id, folder = logger._wandb_init["id"], Path(logger.save_dir) / "wandb"
        if cfg.logger.mode == "offline":
            return (
                f"W&B offline run {run_id} in {folder} (upload: wandb sync {folder}/offline-run-*-{run_id})"
            )
        return f"W&B {cfg.logger.mode} run {run_id} of project {cfg.logger.project}"
    return f"{type(logger).__name__} in {logger.log_dir}"


@contextlib.contextmanager
def quiet_lightning():
    """For the bench's many short Trainers: Lightning's per-Trainer banner and its advice for short runs
    would repeat every repetition and bury the measurement's own output."""
    log = logging.getLogger("lightning.pytorch")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)
