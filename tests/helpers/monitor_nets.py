"""Small plain ReLU nets, a minimal LightningModule and an in-memory logger for the monitor's tests.

Written here rather than imported from `template.models`/`template.module` so the monitor is tested
against the contract it promises any model (a LightningModule with `.model`), not one implementation.
"""

from __future__ import annotations

import os
from collections import defaultdict

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

QUIET_WANDB = {
    "WANDB_SILENT": "true",
    "WANDB_CONSOLE": "off",
    "WANDB_X_DISABLE_STATS": "true",
    "WANDB_DISABLE_GIT": "true",
    "WANDB_DISABLE_CODE": "true",
}
for _key, _value in QUIET_WANDB.items():
    os.environ.setdefault(_key, _value)


def initialise(model: nn.Module, scheme: str) -> nn.Module:
    """kaiming (He normal, fan_in) | glorot (Xavier normal) with zero biases | pytorch_default (as built)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)) and scheme != "pytorch_default":
            if scheme == "kaiming":
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif scheme == "glorot":
                nn.init.xavier_normal_(module.weight)
            else:
                raise ValueError(scheme)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def plain_mlp(
    depth: int, width: int, scheme: str, inputs: int | None = None, classes: int = 10
) -> nn.Sequential:
    """depth Linear layers, ReLU between, square hidden layers; the classifier is the last layer."""
    sizes = [inputs or width] + [width] * (depth - 1) + [classes]
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(sizes[i], sizes[i + 1])] + ([nn.ReLU()] if i < depth - 1 else [])
    return initialise(nn.Sequential(*layers), scheme)


class PlainCNN(nn.Module):
    """He's plain net: 3x3 convs of one width with ReLU, global average pool, a linear classifier.

    `padding="circular"` removes the border effect: with zero padding an output near the border sums
    fewer inputs, so each layer keeps only about (1 - 2/(3H))² of the variance He's relation predicts
    on an H x H map (0.84 at 8 x 8, 0.96 at 32 x 32), which compounds over 30 layers.
    """

    def __init__(
        self, depth: int, width: int, scheme: str, channels: int = 3, classes: int = 10, padding="zeros"
    ):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth - 1):
            conv = nn.Conv2d(channels if i == 0 else width, width, 3, padding=1, padding_mode=padding)
            layers += [conv, nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, classes)
        initialise(self, scheme)

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class Classifier(L.LightningModule):
    def __init__(self, model: nn.Module, lr: float = 0.01):
        super().__init__()
        self.model = model
        self.lr = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def loader(
    samples: int, shape: tuple[int, ...], batch_size: int, classes: int = 10, seed: int = 0
) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, *shape, generator=generator)
    y = torch.randint(0, classes, (samples,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)


class MemoryLogger(Logger):
    """What went through Lightning's logger interface: metrics[key][step] = value."""

    def __init__(self):
        super().__init__()
        self.metrics: dict[str, dict[int, float]] = defaultdict(dict)

    name = "memory"
    version = 0

    def log_metrics(self, metrics, step=None):
        for key, value in metrics.items():
            self.metrics[key][step] = value

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def at(self, family: str, step: int) -> dict[str, float]:
        """{layer: value} of one key family (e.g. "act_var") at one step."""
        prefix = family + "/"
        return {
            k[len(prefix) :]: v[step] for k, v in self.metrics.items() if k.startswith(prefix) and step in v
        }


def trainer(max_steps: int, logger=None, callbacks=(), devices: int = 1, **kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        devices=devices,
        max_steps=max_steps,
        logger=logger if logger is not None else False,
        callbacks=list(callbacks),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )
