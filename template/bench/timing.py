"""The parity measurement: the same steps through the template (Trainer, `Classifier`, monitor, progress
bar, logger) and through a hand-written loop, both built with train's own functions (`build_model`, one
`inits.initialize` copied into each run, `build_optimizer`, `build_classifier`) on the DataModule's own
batches (the synthetic set's on-device loader, made beforehand: no loader runs in the window, so
Lightning's overhead shows in full). Both sides get train's `speed_up` (channels_last and cuDNN
autotuning on a GPU, `model.compile`), as `make train` applies it.

The two run in lockstep, in one process: a callback of the template's fit, called first at the start
of each of its steps, runs the plain loop's step on the same batch, so the sides take turns — plain,
template, plain, template. Why: on a shared 2-core machine one step's time wanders by 10 % from one
step to the next and by 20 % within a minute (measured: 219 ms median, 11 % spread of single steps, 8 %
of 10-step blocks), so two loops timed one after the other compare two different machines; taking
turns step by step, both see the same one. Each plain turn is timed from its start to its end, each
template turn from the end of the plain turn to the start of the next (Lightning's own work between
steps, the monitor, the progress bar and the logger included), over steps [warmup, warmup + steps).
On a GPU a turn ends in a device sync, which would keep the template from queueing work ahead of the
device; there a turn is `bench.turn_steps` steps long (default 10, 1 on a CPU).

What runs beside the loop — the progress bar's redraw thread, W&B's threads and its writer process —
does not take turns: whatever of it ran while the plain loop had its turn slowed the plain loop, not
the template. So it is measured and charged to the template: the CPU time of this process's other
threads during plain turns (read from each thread's CPU clock at every turn) and the child processes'
CPU time over the window in proportion to the plain turns' share of it, each CPU second added to the
template's time as a whole second (an upper bound: one core of two lost for that second) and moved
from the plain loop's CPU seconds to the template's. Each side reports its images, every step's loss
and how far its weights moved, and hands back its trained model: both must have done the same work,
step for step. The template's record also keeps every turn's seconds beside its plain turn's, and
whether the turn held a monitor logging step: `report.py` takes the per-step costs from them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
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
from template.module import build_optimizer
from template.monitor import VarianceMonitor
from template.run.info import quiet_lightning
from template.run.loggers import finish_logger, make_logger
from template.run.progress import progress_bar
from template.train import build_classifier, build_model, speed_up


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

    @property
    def window(self) -> range:
        """The timed steps."""
        return range(self.cfg.bench.warmup, self.cfg.bench.warmup + self.cfg.bench.steps)

    @property
    def turn_steps(self) -> int:
        return self.cfg.bench.turn_steps or (10 if self.device.type == "cuda" else 1)

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


class PlainLoop:
    """The loop a researcher would write by hand: forward, loss, backward, step, schedule — the
    optimizer `Classifier` builds and its per-step cosine (without warm-up)."""

    def __init__(self, setup: Setup):
        self.model = setup.fresh_model()  # in training mode, as built
        self.optimizer = build_optimizer(self.model.parameters(), OmegaConf.to_container(setup.cfg.optimizer))
        cosine = setup.cfg.scheduler.name == "cosine"
        steps = len(setup.batches)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, steps) if cosine else None
        bf16 = setup.cfg.trainer.get("precision") == "bf16-mixed"
        self.autocast = (
            torch.autocast(setup.device.type, torch.bfloat16) if bf16 else contextlib.nullcontext()
        )
        self.loss_fn, self.losses = nn.CrossEntropyLoss(), []

    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        with self.autocast:
            loss = self.loss_fn(self.model(inputs), targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.losses.append(loss.detach())  # kept on the device: no host sync in the loop


class Clocks:
    """Wall time, this process's CPU time (every thread), and the CPU time of its threads started from
    Python other than the calling one — the background — each read without a system-wide scan.
    Threads that only call into Python (`threading._DummyThread`: autograd's device threads on a GPU,
    which run both sides' backward passes) are not background."""

    def __init__(self, device: torch.device):
        self.own, self.device = threading.get_ident(), device

    def background(self) -> float:
        total = 0.0
        for thread in threading.enumerate():
            if thread.ident in (None, self.own) or isinstance(thread, threading._DummyThread):
                continue
            with contextlib.suppress(OSError):  # a thread that ended since it was listed
                total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        return total

    def read(self) -> tuple[float, float, float]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter(), time.process_time(), self.background()


def children_cpu_seconds() -> float:
    """CPU seconds of this process's child processes, live ones included: `os.times` counts only
    children that have exited, and W&B's writer lives as long as the process."""
    own = os.times()
    total = own.children_user + own.children_system
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a loader worker may exit while it is read
            times = child.cpu_times()
            total += times.user + times.system
    return total


class Lockstep(Callback):
    """Runs the plain loop's steps at the start of the template's (registered first, so every other
    callback's work counts as the template's), and times the two sides' turns (module docstring)."""

    def __init__(self, setup: Setup, plain: PlainLoop):
        self.setup, self.plain, self.clocks = setup, plain, Clocks(setup.device)
        self.window, self.turn = setup.window, setup.turn_steps  # read once: config reads cost 10 µs each
        self.every_n_steps = setup.cfg.stats.every_n_steps
        self.turns: list[dict] = []  # each turn's first step and the two sides' wall seconds
        self.images = sum(len(inputs) for inputs, _ in setup.batches[self.window.start : self.window.stop])
        self.cpu = {"plain": 0.0, "template": 0.0}
        self.plain_background = 0.0  # CPU seconds of the background during plain turns
        self.children = 0.0  # CPU seconds of the child processes over the window
        self.template_losses: list[torch.Tensor] = []
        self._turn_end: tuple[float, float, float] | None = None  # clocks when the last plain turn ended

    def on_train_batch_start(self, trainer, pl_module, batch, index: int) -> None:
        window, turn = self.window, self.turn
        if index < window.start:  # warm-up: the plain step, untimed
            return self._plain_steps(index, index + 1)
        if (index - window.start) % turn and index < window.stop:
            return  # the template's turn goes on
        if index == window.start:
            self.children = -children_cpu_seconds()
        now = self.clocks.read()
        if index > window.start:  # the template's turn ends here
            self._add("template", self._turn_end, now)
        if index == window.stop:  # the window is over; the plain loop's closing step, untimed
            self.children += children_cpu_seconds()
            return self._plain_steps(index, len(self.setup.batches))
        self._plain_steps(index, min(index + turn, window.stop))
        self._turn_end = self.clocks.read()
        steps = range(index, min(index + turn, window.stop))
        logging = any(step % self.every_n_steps == 0 for step in steps)
        self.turns.append({"first_step": index, "steps": len(steps), "logging_step": logging})
        self._add("plain", now, self._turn_end)
        self.plain_background += self._turn_end[2] - now[2]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, index: int) -> None:
        self.template_losses.append(outputs["loss"].detach())

    def _plain_steps(self, first: int, stop: int) -> None:
        for inputs, targets in self.setup.batches[first:stop]:
            self.plain.step(inputs, targets)

    def _add(self, side: str, start: tuple, end: tuple) -> None:
        """The side's turn in the current turn's record (wall seconds) and in its CPU total."""
        self.turns[-1][f"{side}_s"] = end[0] - start[0]
        self.cpu[side] += end[1] - start[1]

    def records(self, template_model: nn.Module) -> tuple[dict, dict]:
        """(template, plain): each side's images, seconds, CPU seconds, every step's loss and how far
        its weights moved, with the background that ran in plain turns charged to the template."""
        plain_wall = sum(turn["plain_s"] for turn in self.turns)
        template_wall = sum(turn["template_s"] for turn in self.turns)
        moved = self.plain_background + self.children * plain_wall / (plain_wall + template_wall)
        background = self.plain_background + self.children
        template_cpu = self.cpu["template"] + background
        seconds = template_wall + moved
        measured = self._record(seconds, template_cpu, self.template_losses, template_model)
        measured.update(background_cpu_s=background, charged_s=moved, background_share=moved / seconds)
        measured["turns"] = self.turns
        plain_cpu = self.cpu["plain"] - self.plain_background
        return measured, self._record(plain_wall, plain_cpu, self.plain.losses, self.plain.model)

    def _record(self, seconds: float, cpu: float, losses: list, model: nn.Module) -> dict:
        losses = torch.stack(losses).float().cpu().tolist()  # the one host sync, after the window
        record = dict(images=self.images, seconds=seconds, cpu_seconds=cpu, loss_first=losses[0])
        record.update(loss_last=losses[-1], losses=losses, weight_change=self.setup.weight_change(model))
        return {**record, "images_per_s": self.images / seconds, "images_per_cpu_s": self.images / cpu}


@dataclass
class Pair:
    template: dict
    plain: dict
    template_model: nn.Module
    plain_model: nn.Module


def side_by_side(setup: Setup, monitor: bool, folder: Path) -> Pair:
    """The template's path — `Classifier`, the monitor at the config's interval (if `monitor`), train's
    progress bar and the configured logger writing into `folder` — with the plain loop in lockstep.
    Checkpointing and the summary act at an epoch's end, after the window, and are left out."""
    cfg = setup.cfg
    plain = PlainLoop(setup)
    module = build_classifier(cfg, setup.fresh_model(), setup.shape[0])
    lockstep, logger = Lockstep(setup, plain), make_logger(cfg, folder)
    callbacks = [lockstep, *progress_bar(cfg)]
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
    template, plain_record = lockstep.records(module.model)
    return Pair(template, plain_record, module.model, plain.model)
