"""The parity measurement: the same training steps through the template (Lightning's Trainer, `Classifier`,
`VarianceMonitor`, the progress bar, the logger) and through a hand-written PyTorch loop.

What makes the comparison honest:
- Both sides build the same model class from `template.models` and load the same initial weights, use
  the optimizer and per-step cosine schedule `Classifier` uses, and step through the same pre-made
  batches, already on the device (`inputs.py`). No data loader on either side: loading is measured on its own
  (`loader.py`), and here any Lightning overhead shows in full rather than hidden behind a loader.
- Time is taken start to start: from the beginning of step `warmup` to the beginning of step
  `warmup + steps`, so each timed step pays its whole cycle (forward, backward, update, and on the
  template's side every hook, the metrics, the progress bar and the logger). The marks are taken after
  the batch is fetched on both sides (Lightning's `on_train_batch_start`); on a GPU each mark waits for
  the device to finish.
- Each side reports the images it actually stepped through, its first and last loss and how far its
  weights moved, so the report shows that both trained the same thing.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf
from torch import nn

from template.bench.inputs import NUM_CLASSES, Setup
from template.loggers import finish_logger, make_logger
from template.module import Classifier, build_optimizer
from template.monitor import VarianceMonitor


@dataclass
class Measurement:
    images: int
    seconds: float
    # This process's CPU time over the window, all threads. On a CPU it is a second, steadier view of
    # the same work: a shared machine's other jobs stretch wall time when they preempt us, not this.
    cpu_seconds: float
    loss_first: float
    loss_last: float
    weight_change: float  # L2 norm of (final - initial) parameters

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds

    @property
    def images_per_cpu_s(self) -> float:
        return self.images / self.cpu_seconds


class Window:
    """Start-to-start wall and CPU time of steps [start, stop), their images, and every step's loss
    (kept on the device)."""

    def __init__(self, start: int, stop: int, device: torch.device):
        self.start, self.stop, self.device = start, stop, device
        self.images, self.times, self.cpu_times, self.losses = 0, [], [], []

    def mark(self, index: int, batch) -> None:
        if index in (self.start, self.stop):
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.times.append(time.perf_counter())
            self.cpu_times.append(time.process_time())
        if self.start <= index < self.stop:
            self.images += len(batch[0])

    def measurement(self, weight_change: float) -> Measurement:
        losses = torch.stack(self.losses).float().cpu()  # the one host sync, after the window
        return Measurement(
            self.images,
            self.times[1] - self.times[0],
            self.cpu_times[1] - self.cpu_times[0],
            float(losses[0]),
            float(losses[-1]),
            weight_change,
        )


def plain_loop(setup: Setup) -> Measurement:
    """The loop a researcher would write by hand: forward, loss, backward, step, schedule."""
    model = setup.fresh_model()  # in training mode, as built
    optimizer, scheduler = _optimizer(setup.cfg, model, len(setup.batches))
    loss_fn = nn.CrossEntropyLoss()
    window = Window(setup.warmup, setup.warmup + setup.steps, setup.device)
    autocast = (
        torch.autocast(setup.device.type, dtype=torch.bfloat16)
        if setup.cfg.trainer.precision == "bf16-mixed"
        else contextlib.nullcontext()
    )
    for index, (inputs, targets) in enumerate(setup.batches):
        window.mark(index, (inputs, targets))
        with autocast:
            loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        window.losses.append(loss.detach())
    return window.measurement(setup.weight_change(model))


def _optimizer(cfg: DictConfig, model: nn.Module, total_steps: int):
    """`Classifier.configure_optimizers` without a Trainer: the same optimizer and per-step cosine."""
    optimizer = build_optimizer(model.parameters(), OmegaConf.to_container(cfg.optimizer))
    if cfg.scheduler.name == "none":
        return optimizer, None
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)


class _WindowCallback(Callback):
    def __init__(self, window: Window):
        self.window = window

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.window.mark(batch_idx, batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.window.losses.append(outputs["loss"].detach())


def template_loop(setup: Setup, monitor: bool, logger: str, folder: Path) -> Measurement:
    """The template's path: `Classifier`, the monitor at the config's interval, the progress bar, and
    W&B offline into `folder` (or no logger). Checkpointing and the run folder's summary are left out:
    they act at the end of an epoch, after the timed window."""
    cfg = OmegaConf.merge(setup.cfg, {"logger": {"name": logger}})
    module = Classifier(
        setup.fresh_model(),
        num_classes=NUM_CLASSES,
        optimizer=OmegaConf.to_container(cfg.optimizer),
        scheduler=OmegaConf.to_container(cfg.scheduler),
    )
    window = Window(setup.warmup, setup.warmup + setup.steps, setup.device)
    callbacks = [_WindowCallback(window)]
    if monitor:
        callbacks.append(VarianceMonitor(**OmegaConf.to_container(cfg.stats), plots_dir=folder / "plots"))
    run_logger = make_logger(cfg, folder)
    trainer_options = {
        **OmegaConf.to_container(cfg.trainer),
        "accelerator": setup.device.type,
        "devices": 1,
        "max_epochs": 1,
        "max_steps": len(setup.batches),
        "limit_val_batches": 0,
        "enable_progress_bar": True,
        "enable_checkpointing": False,
        "enable_model_summary": False,
    }
    with _quiet_lightning():
        trainer = L.Trainer(
            default_root_dir=folder, logger=run_logger or False, callbacks=callbacks, **trainer_options
        )
        try:
            trainer.fit(module, train_dataloaders=setup.batches)
        finally:
            finish_logger(run_logger)
    return window.measurement(setup.weight_change(module.model))


@contextlib.contextmanager
def _quiet_lightning():
    """Lightning's per-Trainer banner ("GPU available: ...") and its advice for short runs ("no
    val_dataloader", "log_every_n_steps") would repeat every repetition and bury the bench's output."""
    lightning_log, level = (
        logging.getLogger("lightning.pytorch"),
        logging.getLogger("lightning.pytorch").level,
    )
    lightning_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        lightning_log.setLevel(level)
