"""One training run, from a validated config to a finished run folder.

The order matters: everything that can fail because of the user's input (names, options, the data
download, a checkpoint to resume from) happens before the run folder exists, so a refused run leaves
nothing behind. Then the folder, the logger, the Trainer, `fit`, and `summary.json` at the end —
also when the run is stopped by SIGTERM or Ctrl-C, marked `interrupted`, next to a fresh `last.ckpt`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf
from torch import nn

from template import data, inits, models
from template.module import Classifier
from template.monitor import VarianceMonitor
from template.run import folder as run_folder
from template.run import info as run_info
from template.run import provenance, requeue, resume, schedule
from template.run.loggers import finish_logger, make_logger, wandb_run_id
from template.run.progress import progress_bar
from template.run.rng import RngState

LSUV_BATCH = 256  # inputs a data-dependent init is fitted on


class Interrupted(Exception):
    """SIGTERM or Ctrl-C stopped the run after it saved `last.ckpt`; `exit_code` is the shell's."""

    def __init__(self, run_dir: Path, exit_code: int):
        super().__init__(f"interrupted; continue with: make train RESUME={run_dir}")
        self.exit_code = exit_code


def train(cfg: DictConfig) -> Path:
    run_info.quiet_libraries()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = data.build(cfg.data, cfg.seed)
    model = build_model(cfg, datamodule.num_classes, datamodule.image_shape[0])
    datamodule.prepare_data()
    batch = datamodule.sample_inputs(LSUV_BATCH) if inits.needs_batch(cfg.init.name) else None
    report = inits.initialize(model, cfg.init.name, batch=batch, **cfg.init.options)
    if report.untouched:
        warnings.warn(
            f"{cfg.init.name} left {len(report.untouched)} parameters as the framework set them: "
            f"{', '.join(report.untouched)}",
            stacklevel=1,
        )
    continuing = Path(cfg.resume) if cfg.resume else run_folder.requeued(cfg)
    checkpoint = resume.newest_checkpoint(continuing) if continuing else None
    if checkpoint is not None:
        schedule.check_extension(cfg, resume.check_checkpoint(continuing, checkpoint), continuing)
    run_dir, created_here = run_folder.create(cfg, continuing)
    try:
        return _fit(cfg, datamodule, model, report, run_dir, continuing is not None, checkpoint)
    finally:
        if created_here:
            os.environ.pop(run_folder.RUN_DIR_ENV, None)


def build_model(cfg: DictConfig, num_classes: int, in_channels: int = 3) -> nn.Module:
    """The network `cfg.model` describes for the data's classes and channels, as `make train` and `make
    bench` build it."""
    return models.build(
        cfg.model.name,
        depth=cfg.model.depth,
        width=cfg.model.width,
        num_classes=num_classes,
        in_channels=in_channels,
        activation=cfg.model.activation,
        negative_slope=cfg.model.negative_slope,
        norm=cfg.model.norm,
    )


def on_gpu(cfg: DictConfig) -> bool:
    return cfg.trainer.get("accelerator", "auto") in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def speed_up(model, cfg: DictConfig):
    """The fast path on a GPU: channels_last memory layout and cuDNN autotuning; torch.compile when
    `model.compile` is set. `nn.Module.compile` compiles in place, so `named_modules()` — the layer
    names of the monitor and the init report — stay as they were."""
    if on_gpu(cfg):
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    if cfg.model.compile:
        model.compile()
    return model


def build_classifier(cfg: DictConfig, model: nn.Module, num_classes: int) -> Classifier:
    """The LightningModule around `model`, as `make train` and `make bench` build it."""
    optimizer, scheduler = OmegaConf.to_container(cfg.optimizer), OmegaConf.to_container(cfg.scheduler)
    return Classifier(model, num_classes=num_classes, optimizer=optimizer, scheduler=scheduler)


def _fit(cfg: DictConfig, datamodule, model, report, run_dir: Path, continuing: bool, checkpoint) -> Path:
    module = build_classifier(cfg, speed_up(model, cfg), datamodule.num_classes)
    monitor = VarianceMonitor(**OmegaConf.to_container(cfg.stats), plots_dir=run_dir / "plots")
    checkpoints = [
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="epoch{epoch:03d}",
            auto_insert_metric_name=False,
            save_last=True,
            enable_version_counter=False,  # both callbacks write the one last.ckpt, not last-v1.ckpt
        )
    ]
    if cfg.checkpoint.every_n_steps:  # long epochs: last.ckpt also every N optimizer steps
        checkpoints.append(
            ModelCheckpoint(
                dirpath=run_dir / "checkpoints",
                every_n_train_steps=cfg.checkpoint.every_n_steps,
                save_top_k=0,
                save_last=True,
                enable_version_counter=False,
            )
        )
    logger = make_logger(cfg, run_dir, resume_id=resume.wandb_run_id(run_dir) if continuing else None)
    summary = Summary(run_dir, cfg, monitor, report, logger)
    arguments = OmegaConf.to_container(cfg.trainer)
    if (
        checkpoint is not None
    ):  # the sanity check would draw random numbers an unbroken run does not draw there
        arguments.setdefault("num_sanity_val_steps", 0)
    arguments.setdefault("plugins", requeue.plugins())
    arguments.setdefault("enable_model_summary", False)  # its FLOPs column reads 0; run_info says the size
    trainer = L.Trainer(
        default_root_dir=run_dir,
        logger=logger if logger is not None else False,
        callbacks=[monitor, *checkpoints, RngState(), summary, requeue.Requeue(), *progress_bar(cfg)],
        **arguments,
    )
    if trainer.is_global_zero:
        print(run_info.block(cfg, trainer, model, logger, run_dir), flush=True)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True)
    except SystemExit:  # Lightning turns SIGTERM and Ctrl-C into SystemExit after on_exception
        finish_logger(logger)
        raise Interrupted(run_dir, 130 if summary.keyboard_interrupt else 143) from None
    summary.write(trainer, status="completed")
    finish_logger(logger)
    return run_dir


class Summary(Callback):
    """Writes summary.json at the end, and — with `last.ckpt` — when the run is interrupted.

    Keeps each epoch's validation metrics (also across a resume, through its checkpointed state), so
    `make compare` can draw error against epoch without reading the W&B file."""

    def __init__(self, run_dir: Path, cfg: DictConfig, monitor: VarianceMonitor, report, logger):
        self.run_dir, self.cfg, self.monitor, self.report, self.logger = run_dir, cfg, monitor, report, logger
        self.keyboard_interrupt = False
        self.epochs: list[dict] = []  # per-epoch validation metrics, for error-vs-epoch figures

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        row.update({key: _float(metrics.get(key)) for key in ("val/loss", "val/acc")})
        self.epochs.append(row)

    def state_dict(self) -> dict:
        return {"epochs": self.epochs}

    def load_state_dict(self, state: dict) -> None:
        self.epochs = list(state["epochs"])

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt | SystemExit):
            return
        self.keyboard_interrupt = isinstance(exception, KeyboardInterrupt)
        trainer.save_checkpoint(resume.last_checkpoint(self.run_dir))
        self.write(trainer, status="interrupted")

    def write(self, trainer, status: str) -> None:
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        summary = {
            "init": self.cfg.init.name,
            "model": self.cfg.model.name,
            "data": self.cfg.data.name,
            "seed": self.cfg.seed,
            "steps": trainer.global_step,
            "status": status,
            "wandb_run_id": wandb_run_id(self.logger),
            "final": {key: _float(metrics.get(key)) for key in ("train/loss", "val/loss", "val/acc")},
            "epochs": self.epochs,
            "at_init": self.monitor.at_init,
            "init_report": self.report.as_dict(),
            "provenance": provenance.collect(),
        }
        run_folder.write_json(self.run_dir / "summary.json", summary)


def _float(value) -> float | None:
    return None if value is None else float(value)
