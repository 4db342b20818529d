"""The parity measurement: the same steps through the template (Trainer, `Classifier`, monitor, progress
bar, logger) and through a hand-written loop, both built with train's own functions (`build_model`, one
`inits.initialize` copied into each run, `build_optimizer`, `build_classifier`) on the DataModule's own
batches (the synthetic set's on-device loader, made beforehand: no loader runs in the window, so
Lightning's overhead shows in full). Both sides get train's `speed_up` (channels_last and cuDNN
autotuning on a GPU, `model.compile`), as `make train` applies it. Time runs start to start from step
`warmup` to `warmup + steps`, after each batch is fetched (on a GPU after the device finishes); over
the same window each side counts CPU seconds: every thread of this process and every child process
(W&B's writer, its system monitor), which wall time on a shared machine cannot show. Each side reports
its images, every step's loss and how far its weights moved, and hands back its trained model: both
must have done the same work, step for step.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import psutil
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from template import data, inits
from template.loggers import finish_logger, make_logger
from template.module import build_optimizer
from template.monitor import VarianceMonitor
from template.run_info import quiet_lightning
from template.train import build_classifier, build_model, progress_bar, speed_up


def synthetic(cfg: DictConfig, size: int, loader: str, device: torch.device):
    """The DataModule on `size` synthetic training images (none held out) served by `data.loader`."""
    keys = {"name": "synthetic", "loader": loader, "synthetic_train_size": size, "val_size": 0}
    module = data.build(OmegaConf.merge(cfg.data, keys), cfg.seed)
    module.device = device
    module.setup("fit")
    return module


@dataclass
class Setup:
    cfg: DictConfig
    shape: tuple[int, int]  # (num_classes, in_channels)
    initial: dict[str, torch.Tensor]
    batches: list
    device: torch.device

    @classmethod
    def create(cls, cfg: DictConfig, device: torch.device) -> Setup:
        count = cfg.bench.warmup + cfg.bench.steps + 1
        module = synthetic(cfg, count * cfg.data.batch_size, "device", device)
        batches = list(itertools.islice(module.train_dataloader(), count))
        torch.manual_seed(cfg.seed)
        shape = (module.num_classes, module.image_shape[0])
        model = build_model(cfg, *shape)
        fit_batch = batches[0][0].cpu() if inits.needs_batch(cfg.init.name) else None
        inits.initialize(model, cfg.init.name, batch=fit_batch, **OmegaConf.to_container(cfg.init.options))
        initial = {name: value.detach().clone() for name, value in model.state_dict().items()}
        return cls(cfg, shape, initial, batches, device)

    def fresh_model(self) -> nn.Module:
        """The initialised network on the device, through train's `speed_up`."""
        model = build_model(self.cfg, *self.shape)
        model.load_state_dict(self.initial)
        return speed_up(model.to(self.device), self.cfg)

    def weight_change(self, model: nn.Module) -> float:
        state = model.state_dict()  # the L2 norm of (final - initial) over every tensor
        return (
            sum(float((state[k].float().cpu() - v.float()).square().sum()) for k, v in self.initial.items())
            ** 0.5
        )


def cpu_seconds() -> float:
    """CPU seconds so far of this process (all its threads) and its children, live ones included:
    `os.times` counts only children that have exited, and W&B's writer lives as long as the process."""
    own, total = os.times(), time.process_time()
    total += own.children_user + own.children_system
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a loader worker may exit while it is read
            times = child.cpu_times()
            total += times.user + times.system
    return total


class Window(Callback):
    """Start-to-start wall time and CPU seconds of steps [warmup, warmup + steps), their images and
    every step's loss (kept on the device); a Lightning callback on the template's side, called by hand
    on the plain one."""

    def __init__(self, setup: Setup):
        self.start, self.device = setup.cfg.bench.warmup, setup.device
        self.stop = self.start + setup.cfg.bench.steps
        self.images, self.times, self.cpu, self.losses = 0, [], [], []

    def on_train_batch_start(self, trainer, pl_module, batch, index: int) -> None:
        if index in (self.start, self.stop):
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.times.append(time.perf_counter())
            self.cpu.append(cpu_seconds())
        if self.start <= index < self.stop:
            self.images += len(batch[0])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, index: int) -> None:
        self.losses.append(outputs["loss"].detach())

    def record(self, weight_change: float) -> dict:
        losses = torch.stack(self.losses).float().cpu().tolist()  # the one host sync, after the window
        seconds, cpu = self.times[1] - self.times[0], self.cpu[1] - self.cpu[0]
        record = dict(images=self.images, seconds=seconds, cpu_seconds=cpu, loss_first=losses[0])
        record.update(loss_last=losses[-1], losses=losses, weight_change=weight_change)
        return {**record, "images_per_s": self.images / seconds, "images_per_cpu_s": self.images / cpu}


def plain_loop(setup: Setup) -> tuple[dict, nn.Module]:
    """The loop a researcher would write by hand: forward, loss, backward, step, schedule — the
    optimizer `Classifier` builds and its per-step cosine (without warm-up). Returns the record and the
    trained model."""
    model = setup.fresh_model()  # in training mode, as built
    optimizer = build_optimizer(model.parameters(), OmegaConf.to_container(setup.cfg.optimizer))
    cosine = setup.cfg.scheduler.name == "cosine"
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, len(setup.batches)) if cosine else None
    bf16 = setup.cfg.trainer.get("precision") == "bf16-mixed"
    autocast = torch.autocast(setup.device.type, torch.bfloat16) if bf16 else contextlib.nullcontext()
    loss_fn, window = nn.CrossEntropyLoss(), Window(setup)
    for index, (inputs, targets) in enumerate(setup.batches):
        window.on_train_batch_start(None, None, (inputs, targets), index)
        with autocast:
            loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        window.on_train_batch_end(None, None, {"loss": loss}, None, index)
    return window.record(setup.weight_change(model)), model


def template_loop(setup: Setup, monitor: bool, folder: Path) -> tuple[dict, nn.Module]:
    """The template's path: `Classifier`, the monitor at the config's interval, train's progress bar,
    and the configured logger writing into `folder`. Checkpointing and the summary act at an epoch's
    end, after the window, and are left out. Returns the record and the trained model."""
    cfg = setup.cfg
    module = build_classifier(cfg, setup.fresh_model(), setup.shape[0])
    window, logger = Window(setup), make_logger(cfg, folder)
    callbacks = [window, *progress_bar(cfg)]
    if monitor:
        callbacks.append(VarianceMonitor(**OmegaConf.to_container(cfg.stats), plots_dir=folder / "plots"))
    options = {**OmegaConf.to_container(cfg.trainer), "accelerator": setup.device.type, "devices": 1}
    options.update(max_epochs=1, max_steps=len(setup.batches), limit_val_batches=0, default_root_dir=folder)
    options.update(enable_checkpointing=False, enable_model_summary=False)
    with quiet_lightning():
        trainer = L.Trainer(logger=logger or False, callbacks=callbacks, **options)
        try:
            # batch_size=None hands each pre-made batch over as it is; a bare list would be many loaders
            trainer.fit(module, train_dataloaders=DataLoader(setup.batches, batch_size=None))
        finally:
            finish_logger(logger)
    return window.record(setup.weight_change(module.model)), module.model
