"""What both sides of the parity comparison share: the template's config, one set of initial weights,
and the batches, made once before anything is timed.

The batches are CIFAR-shaped normalised images, already on the device, with a colour per class so the
loss falls within a few steps (the tests check that both sides train). Every run builds a fresh model
of the same class and loads the same initial weights, so each starts from the same point with fresh
optimizer state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from template import config, inits
from template.train import build_model

NUM_CLASSES = 10


class Batches:
    """Pre-made `(inputs, targets)` batches. Not a list: Lightning would read a list as several loaders."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


@dataclass
class Setup:
    """What both sides share: the template's config, the initial weights and the batches."""

    cfg: DictConfig
    initial: dict[str, torch.Tensor]
    batches: Batches
    warmup: int
    steps: int
    device: torch.device

    @classmethod
    def create(cls, overrides: list[str], warmup: int, steps: int, device: torch.device, seed: int = 0):
        """`overrides` are training-config keys (`model.depth=11`, `trainer.precision=bf16-mixed`)."""
        cfg = config.load([*overrides, f"seed={seed}"])
        batches = make_batches(warmup + steps + 1, cfg.data.batch_size, device, seed)
        torch.manual_seed(seed)
        model = build_model(cfg, NUM_CLASSES)
        batch = batches.batches[0][0].cpu() if inits.needs_batch(cfg.init.name) else None
        inits.initialize(model, cfg.init.name, batch=batch, **OmegaConf.to_container(cfg.init.options))
        initial = {name: value.detach().clone() for name, value in model.state_dict().items()}
        return cls(cfg, initial, batches, warmup, steps, device)

    def fresh_model(self) -> nn.Module:
        model = build_model(self.cfg, NUM_CLASSES)
        model.load_state_dict(self.initial)
        return model.to(self.device)

    def weight_change(self, model: nn.Module) -> float:
        state = model.state_dict()
        moved = [
            (state[name].float().cpu() - value.float()).flatten() for name, value in self.initial.items()
        ]
        return float(torch.linalg.vector_norm(torch.cat(moved)))


def make_batches(count: int, batch_size: int, device: torch.device, seed: int) -> Batches:
    """CIFAR-shaped, normalised images with a colour per class, so the loss can fall within a few steps."""
    generator = torch.Generator().manual_seed(seed)
    colours = torch.randn(NUM_CLASSES, 3, 1, 1, generator=generator)
    batches = []
    for _ in range(count):
        targets = torch.randint(NUM_CLASSES, (batch_size,), generator=generator)
        inputs = torch.randn(batch_size, 3, 32, 32, generator=generator) + colours[targets]
        batches.append((inputs.to(device), targets.to(device)))
    return Batches(batches)
