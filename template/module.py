"""The LightningModule: a classifier around any `nn.Module`, with cross-entropy, accuracy, SGD or AdamW
and a cosine schedule.

It holds the network under study as `self.model`, so the variance monitor and the init registry see
exactly the layers a user wrote, with `named_modules()` names free of a wrapper prefix.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy


class Classifier(L.LightningModule):
    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        optimizer: dict,
        scheduler: dict,
    ):
        super().__init__()
        self.model = model
        self.optimizer_options = dict(optimizer)
        self.scheduler_options = dict(scheduler)
        self.save_hyperparameters(ignore=["model"])
        self.loss = nn.CrossEntropyLoss()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs)

    def _step(self, batch, split: str, accuracy: MulticlassAccuracy) -> torch.Tensor:
        inputs, targets = batch
        logits = self(inputs)
        loss = self.loss(logits, targets)
        accuracy(logits, targets)
        # Training metrics per step (W&B's `train/loss`), evaluation metrics per epoch over all ranks.
        training = split == "train"
        self.log(
            f"{split}/loss",
            loss,
            on_step=training,
            on_epoch=not training,
            prog_bar=True,
            sync_dist=not training,
        )
        self.log(f"{split}/acc", accuracy, on_step=training, on_epoch=not training, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train", self.train_acc)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val", self.val_acc)

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test", self.test_acc)

    def configure_optimizers(self):
        options = dict(self.optimizer_options)
        name = options.pop("name")
        if name == "sgd":
            optimizer = torch.optim.SGD(self.parameters(), **options)
        else:
            options.pop("momentum", None)
            options.pop("nesterov", None)
            optimizer = torch.optim.AdamW(self.parameters(), **options)
        if self.scheduler_options["name"] == "none":
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self._cosine(optimizer)}

    def _cosine(self, optimizer) -> dict:
        """Per-step cosine decay after a linear warm-up: steps, not epochs, so a short run with
        `trainer.max_steps` or `limit_train_batches` still decays to zero."""
        total = max(1, int(self.trainer.estimated_stepping_batches))
        steps_per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        warmup = self.scheduler_options["warmup_epochs"] * steps_per_epoch
        schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup))]
        if warmup:
            schedules.insert(0, torch.optim.lr_scheduler.LinearLR(optimizer, 1e-3, 1.0, total_iters=warmup))
            scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, schedules, milestones=[warmup])
        else:
            scheduler = schedules[0]
        return {"scheduler": scheduler, "interval": "step"}
