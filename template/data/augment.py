"""The training augmentation — a random crop of the zero-padded image back to its own H×W, then (where the
data set allows it) a horizontal flip with probability ½ — and the per-channel normalisation, in two
forms that give identical pixels:

- `train_transform` / `eval_transform`: torchvision's transforms v2, one image at a time, for the
  DataLoader path (`data.loader=torch`).
- `augment` + `normalize`: a whole batch at once, for the on-device loader (`data.loader=device`).
  torchvision's random transforms draw one crop and one flip per call, i.e. per batch when handed a
  batch, so the per-sample crop and flip are written here by hand: one gather whose index tensors hold
  each sample's window (mirrored where it flips), no Python loop over samples. The decisions are
  arguments (`draw` makes them), so a test can replay them through torchvision and compare pixels.
  The dtype conversion and normalisation are torchvision's own functionals, batched.

The padding is the data set's (`DataModule.padding`: CIFAR's 4 pixels at 32×32, an eighth of the height
by default); digits are not flipped, since a mirrored digit is another glyph or none.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

PAD = 4  # CIFAR's padding: pixels of zeros around a 32×32 image before the random crop


def train_transform(mean, std, size: tuple[int, int] = (32, 32), padding: int = PAD, flip: bool = True):
    """The random crop of `size` (H, W) from the image padded by `padding`, the flip if `flip`, then
    the normalisation."""
    crop = [v2.RandomCrop(size, padding=padding)] if padding else []
    mirror = [v2.RandomHorizontalFlip()] if flip else []
    return v2.Compose([*crop, *mirror, v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def eval_transform(mean, std) -> v2.Compose:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def draw(n: int, generator: torch.Generator, padding: int = PAD, flip: bool = True) -> tuple[Tensor, Tensor]:
    """Each sample's decisions: crop corner (top, left) in the padded image, each in [0, 2·padding], and
    whether it flips (never, without `flip`); what v2.RandomCrop and v2.RandomHorizontalFlip would draw,
    one sample at a time. The same random numbers are drawn either way, so the order of what follows
    does not depend on `flip`."""
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    return offsets, flips & flip


def augment(images: Tensor, offsets: Tensor, flips: Tensor, padding: int = PAD) -> Tensor:
    """Crop each (N, C, H, W) image at its `offsets` out of the zero-padded batch, then mirror those
    with `flips`: the same pixels as F.crop(F.pad(image, padding), top, left, H, W) then F.horizontal_flip."""
    n, c, h, w = images.shape
    padded = F.pad(images, [padding])  # (N, C, H + 2·padding, W + 2·padding)
    grid_h = torch.arange(h, device=images.device)
    grid_w = torch.arange(w, device=images.device)
    rows = offsets[:, 0, None] + grid_h  # (N, H)
    cols = offsets[:, 1, None] + torch.where(flips[:, None], grid_w.flip(0), grid_w)  # (N, W)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def normalize(images: Tensor, mean, std) -> Tensor:
    """uint8 (N, C, H, W) to float32, scaled to [0, 1], then standardised per channel."""
    return F.normalize(F.to_dtype(images, torch.float32, scale=True), list(mean), list(std))
