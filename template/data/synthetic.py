"""A CIFAR-shaped set made from the seed in a fraction of a second, for runs without network and for
tests: 3×32×32 images, 10 classes, stored as uint8 like CIFAR so that both loaders and the training
augmentation treat it exactly as they treat CIFAR.

Each class is a fixed sum of two coloured gratings (a random wave vector of 2–5 cycles per image, a
random colour, a random phase): smooth, low-frequency structure, as in natural images. Each sample
shifts its class's pattern by a random amount (circularly, anywhere in the image), mirrors it with
probability ½, scales its contrast, adds a random brightness per channel and white noise. As the
shift is arbitrary, no pixel carries the class on average: a linear classifier on pixels stays near
chance, while a CNN finds the class in local orientation, frequency and colour. Mirroring puts the
training augmentation's flip inside the distribution. tests/data/test_data_synthetic.py checks both
halves of that claim.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from template.data.datamodule import DataModule, Split, hold_out

NUM_CLASSES = 10
GRATINGS = 2  # per class
CYCLES = (2.0, 5.0)  # spatial frequency range, cycles per image
SHIFT = 16.0  # pixels, at most, in each direction (circular)
CONTRAST = (0.75, 1.25)
BRIGHTNESS_STD = 0.25
NOISE_STD = 0.25
# Stored as 128 + 48·z, z standardised per channel with the training images' statistics and clipped
# to the uint8 range (±2.7 std, 0.7% of pixels): the crop's zero padding then sits at -2.7 std, about
# where CIFAR's black does (-2 std), not far outside the data.
CENTRE, SCALE = 128.0, 48.0
STREAMS = ("classes", "train", "test")  # independent random streams per seed
MAX_VAL_FRACTION = 4  # the validation split takes at most a quarter of the training images


def generate(n: int, seed: int, split: str = "train") -> tuple[Tensor, Tensor]:
    """n float images (n, 3, 32, 32) and balanced labels in random order. The class patterns depend on
    the seed alone; the samples on (seed, split), so train and test are distinct draws of one task."""
    wave, colour, phase = _classes(_generator(seed, "classes"))
    return _render(n, wave, colour, phase, _generator(seed, split))


def _generator(seed: int, stream: str) -> torch.Generator:
    return torch.Generator().manual_seed(3 * seed + STREAMS.index(stream))


def _classes(generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    cycles = torch.empty(NUM_CLASSES, GRATINGS).uniform_(*CYCLES, generator=generator)
    angle = torch.rand(NUM_CLASSES, GRATINGS, generator=generator) * math.pi
    wave = torch.stack([cycles * torch.sin(angle), cycles * torch.cos(angle)], dim=-1)  # (C, G, [y, x])
    colour = torch.randn(NUM_CLASSES, GRATINGS, 3, generator=generator)
    colour = colour / colour.norm(dim=-1, keepdim=True)
    phase = torch.rand(NUM_CLASSES, GRATINGS, generator=generator) * 2 * math.pi
    return wave, colour, phase


def _render(n: int, wave: Tensor, colour: Tensor, phase: Tensor, generator: torch.Generator):
    labels = torch.randperm(n, generator=generator) % len(wave)
    wave = wave[labels].clone()  # (n, G, 2)
    mirror = torch.rand(n, generator=generator) < 0.5
    wave[..., 1] = torch.where(mirror[:, None], -wave[..., 1], wave[..., 1])
    shift = (2 * torch.rand(n, 1, 2, generator=generator) - 1) * SHIFT
    phase = phase[labels] - 2 * math.pi / 32 * (wave * shift).sum(-1)  # shifting = moving the phase
    # cos(a_y + b_x) = cos a_y cos b_x - sin a_y sin b_x: separable, so two batched outer products
    position = torch.arange(32, dtype=torch.float32) * 2 * math.pi / 32
    rows = wave[..., 0, None] * position + phase[..., None]  # (n, G, 32)
    cols = wave[..., 1, None] * position
    coloured = colour[labels][..., None]  # (n, G, 3, 1)
    images = torch.einsum("ngcy,ngx->ncyx", coloured * rows.cos()[:, :, None], cols.cos())
    images -= torch.einsum("ngcy,ngx->ncyx", coloured * rows.sin()[:, :, None], cols.sin())
    images *= torch.empty(n, 1, 1, 1).uniform_(*CONTRAST, generator=generator)
    images += BRIGHTNESS_STD * torch.randn(n, 3, 1, 1, generator=generator)
    images += NOISE_STD * torch.randn(n, 3, 32, 32, generator=generator)
    return images, labels


def quantise(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """To uint8 as CENTRE + SCALE·(standardised value), rounded and clipped."""
    scale = (SCALE / std)[:, None, None]
    return (images * scale).add_(CENTRE - mean[:, None, None] * scale).round_().clamp_(0, 255).to(torch.uint8)


class Synthetic(DataModule):
    """`data.synthetic_train_size` training images, of which min(`data.val_size`, a quarter) are held
    out for validation, and `data.synthetic_test_size` test images, all from the run's seed."""

    name, num_classes = "synthetic", NUM_CLASSES
    mean = (CENTRE / 255,) * 3
    std = (SCALE / 255,) * 3

    def load_splits(self) -> dict[str, Split]:
        train_images, train_labels = generate(self.cfg.synthetic_train_size, self.seed, "train")
        test_images, test_labels = generate(self.cfg.synthetic_test_size, self.seed, "test")
        mean, std = train_images.mean((0, 2, 3)), train_images.std((0, 2, 3))
        train = quantise(train_images, mean, std), train_labels
        val_count = min(self.cfg.val_size, len(train_labels) // MAX_VAL_FRACTION)
        train, val = hold_out(*train, val_count)
        return {"train": train, "val": val, "test": (quantise(test_images, mean, std), test_labels)}
