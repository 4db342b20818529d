"""The bench's bare-Lightning side: the plain loop's step written as Lightning wants it — a LightningModule
with the model, the loss and the plain loop's optimizer and schedule, in a Trainer with nothing of the
template's (no monitor, logger, progress bar, checkpoints or `Classifier`) — in lockstep with a plain loop
of its own (`timing.Lockstep`, the one callback, which times the turns). Its ratio to that loop is what
Lightning's own per-step Python costs (its hooks, closures, the optimizer and scheduler wrappers); the
template's parity over it is what the template adds.
"""

from __future__ import annotations

import lightning as L
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from template.bench.timing import Lockstep, Pair, PlainLoop, Setup
from template.module import build_optimizer
from template.run.info import quiet_lightning


class Bare(L.LightningModule):
    """`PlainLoop.step` as a LightningModule: the same loss, optimizer and per-step cosine."""

    def __init__(self, model: nn.Module, optimizer: dict, cosine_steps: int | None):
        super().__init__()
        self.model, self.options, self.cosine_steps = model, optimizer, cosine_steps
        self.loss_fn = nn.CrossEntropyLoss()

    def training_step(self, batch, batch_idx):
        inputs, targets = batch
        return self.loss_fn(self.model(inputs), targets)

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model.parameters(), self.options)
        if self.cosine_steps is None:
            return optimizer
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.cosine_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}


def bare_side(setup: Setup, folder) -> Pair:
    """The bare Lightning loop and a plain loop in lockstep on the bench's batches: (bare, plain)."""
    cfg, steps = setup.cfg, len(setup.batches)
    plain = PlainLoop(setup)
    cosine = steps if cfg.scheduler.name == "cosine" else None
    module = Bare(setup.fresh_model(), OmegaConf.to_container(cfg.optimizer), cosine)
    lockstep = Lockstep(setup, plain)
    options = dict(
        accelerator=setup.device.type, devices=1, precision=cfg.trainer.get("precision", "32-true")
    )
    options.update(max_epochs=1, max_steps=steps, default_root_dir=folder, logger=False)
    options.update(enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    with quiet_lightning():
        trainer = L.Trainer(callbacks=[lockstep], **options)
        trainer.fit(module, train_dataloaders=DataLoader(setup.batches, batch_size=None))
    bare, plain_record = lockstep.records(module.model)
    return Pair(bare, plain_record, module.model, plain.model)
