"""One training run, from a validated config to a finished run folder.

The order matters: everything that can fail because of the user's input (names, options, the data
download) happens before the run folder exists, so a refused run leaves nothing behind. Then the
folder, the logger, the Trainer, `fit`, and `summary.json` written atomically at the end.
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import datetime
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from template import data, inits, models
from template.module import Classifier
from template.monitor import VarianceMonitor

RUN_DIR_ENV = "TEMPLATE_RUN_DIR"  # agreed by every process of a multi-process job (see run_folder)
LSUV_BATCH = 256  # inputs a data-dependent init is fitted on


def train(cfg: DictConfig) -> Path:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = data.build(cfg.data, cfg.seed)
    datamodule.prepare_data()
    model = models.build(
        cfg.model.name,
        depth=cfg.model.depth,
        width=cfg.model.width,
        num_classes=datamodule.num_classes,
        activation=cfg.model.activation,
        negative_slope=cfg.model.negative_slope,
        norm=cfg.model.norm,
    )
    batch = datamodule.sample_inputs(LSUV_BATCH) if inits.needs_batch(cfg.init.name) else None
    report = inits.initialize(model, cfg.init.name, batch=batch, **cfg.init.options)
    if report.untouched:
        warnings.warn(f"{cfg.init.name} left {len(report.untouched)} parameters as the framework set them: "
                      f"{', '.join(report.untouched)}", stacklevel=1)

    run_dir, created_here = run_folder(cfg)
    try:
        return _fit(cfg, datamodule, model, report, run_dir)
    finally:
        if created_here:
            os.environ.pop(RUN_DIR_ENV, None)


def _fit(cfg: DictConfig, datamodule, model, report, run_dir: Path) -> Path:
    module = Classifier(
        model,
        num_classes=datamodule.num_classes,
        optimizer=OmegaConf.to_container(cfg.optimizer),
        scheduler=OmegaConf.to_container(cfg.scheduler),
    )
    monitor = VarianceMonitor(**OmegaConf.to_container(cfg.stats), plots_dir=run_dir / "plots")
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="epoch{epoch:03d}", auto_insert_metric_name=False,
        save_last=True,
    )
    logger = make_logger(cfg, run_dir)
    trainer = L.Trainer(
        default_root_dir=run_dir,
        logger=logger if logger is not None else False,
        callbacks=[monitor, checkpoints],
        **OmegaConf.to_container(cfg.trainer),
    )
    trainer.fit(module, datamodule=datamodule)
    if trainer.is_global_zero:
        write_summary(run_dir, cfg, trainer, monitor, report, logger)
    finish_logger(logger)
    return run_dir


def run_folder(cfg: DictConfig) -> tuple[Path, bool]:
    """Create the run folder and save the resolved config.

    Lightning's DDP launcher starts the other processes by re-running this same command, so the
    folder's name travels to them through the environment instead of each process taking a timestamp
    of its own: one job, one folder. Returns the folder and whether this process created it.
    """
    agreed = os.environ.get(RUN_DIR_ENV)
    if agreed:
        return Path(agreed), False
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = cfg.run_name or (
        f"{stamp}-{cfg.init.name}-{cfg.model.name}{cfg.model.depth}-{cfg.data.name}-s{cfg.seed}"
    )
    run_dir = Path(cfg.runs_dir).resolve() / name
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "plots").mkdir()
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir, True


def make_logger(cfg: DictConfig, run_dir: Path):
    name = cfg.logger.name
    if name == "none":
        return None
    if name == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir=run_dir, name="csv", version="")
    if name == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(save_dir=run_dir, name="tensorboard", version="")
    from lightning.pytorch.loggers import WandbLogger

    # `mode=` and not `offline=True`: the latter sets WANDB_MODE for the whole process.
    return WandbLogger(
        project=cfg.logger.project,
        group=cfg.logger.group,
        name=run_dir.name,
        save_dir=str(run_dir),
        mode=cfg.logger.mode,
        config=OmegaConf.to_container(cfg, resolve=True),
    )


def finish_logger(logger) -> None:
    """Lightning never calls `wandb.finish()`; without it an offline run's file may be incomplete."""
    from lightning.pytorch.loggers import WandbLogger

    if isinstance(logger, WandbLogger):
        import wandb

        wandb.finish()


def write_summary(run_dir: Path, cfg: DictConfig, trainer, monitor, report, logger) -> None:
    metrics = trainer.callback_metrics
    final = {key: _float(metrics.get(key)) for key in ("train/loss", "val/loss", "val/acc")}
    summary = {
        "init": cfg.init.name,
        "model": cfg.model.name,
        "data": cfg.data.name,
        "seed": cfg.seed,
        "steps": trainer.global_step,
        "wandb_run_id": _wandb_run_id(logger),
        "final": final,
        "at_init": monitor.at_init,
        "init_report": report.as_dict(),
    }
    write_json_atomically(run_dir / "summary.json", summary)


def write_json_atomically(path: Path, payload: dict) -> None:
    """Write then rename: a kill mid-write leaves the old file or none, never half of one."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(partial, path)


def _wandb_run_id(logger) -> str | None:
    from lightning.pytorch.loggers import WandbLogger

    return logger.experiment.id if isinstance(logger, WandbLogger) else None


def _float(value) -> float | None:
    return None if value is None else float(value)
