"""A data loader for a set that fits in the training device's memory (CIFAR's 50,000 images are 150 MB
as uint8), in the manner of airbench: the images are copied to the device once, and each batch is
indexed, cropped, flipped and normalised there by batched tensor ops — no worker processes, no
per-sample Python, no host-to-device copy per step.

Written by hand because neither torch nor Lightning has one: a DataLoader works sample by sample on
the host. It keeps what Lightning expects of a loader: `__len__`, `__iter__`, and `state_dict` /
`load_state_dict` (Lightning saves and restores them with the fit loop), so a resumed run continues
with the very batch the interrupted one would have drawn next. The order is a function of
(seed, epoch) alone, so the state is two integers.

Each rank's samples are exactly those torch's DistributedSampler(seed=seed) yields after
`set_epoch(epoch)`: the same permutation, the same interleaved slices; training drops the remainder
(equal batches on every rank, each sample at most once), evaluation keeps the order and pads by
repeating the first samples (each sample seen; a few twice). Without DDP that is one rank of one.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import Tensor

from template.data import augment


def rank_and_world_size() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(order: Tensor, rank: int, world_size: int, drop_last: bool) -> Tensor:
    """This rank's share of `order`, interleaved as DistributedSampler does."""
    if drop_last:
        order = order[: len(order) // world_size * world_size]
    else:  # repeat from the start up to a multiple of world_size (more than once if world_size > N)
        total = math.ceil(len(order) / world_size) * world_size
        order = order.repeat(math.ceil(total / max(len(order), 1)))[:total]
    return order[rank::world_size]


class DeviceLoader:
    """Batches of (normalised float images, labels) on `device`, from uint8 images (N, C, H, W).

    `train=True` shuffles with a permutation seeded by seed + epoch and augments each sample with the
    crop (out of the image zero-padded by `padding`) and flip (if `flip`) drawn for it that epoch;
    `train=False` keeps the order and does not augment. An epoch starts at each `iter()` that does not
    continue a restored, unfinished one.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        mean,
        std,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        device: torch.device | str = "cpu",
        rank: int | None = None,
        world_size: int | None = None,
        padding: int = augment.PAD,
        flip: bool = True,
    ):
        if rank is None or world_size is None:
            rank, world_size = rank_and_world_size()
        self.device = torch.device(device)
        self.images = images.to(self.device)  # a no-op when the caller already moved them
        self.labels = labels.to(self.device)
        self.mean, self.std = mean, std
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.padding, self.flip = padding, flip
        self.rank, self.world_size = rank, world_size
        self.epoch = -1  # the epoch being (or last) iterated
        self.batches_done = 0  # batches of that epoch already handed out
        self.epoch_batches = len(self)  # batches the Trainer takes per epoch (`limit_train_batches`)
        self._continue = False  # the next iter() resumes `epoch` after a load_state_dict

    @property
    def samples_per_rank(self) -> int:
        n = len(self.labels)
        return n // self.world_size if self.train else math.ceil(n / self.world_size)

    def __len__(self) -> int:
        return math.ceil(self.samples_per_rank / self.batch_size)

    def __iter__(self):
        if self._continue:
            self._continue = False
        else:
            self.epoch, self.batches_done = self.epoch + 1, 0
        order, offsets, flips = self._plan(self.epoch)
        for start in range(self.batches_done * self.batch_size, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images[index]
            if self.train:
                images = augment.augment(images, offsets[index], flips[index], self.padding)
            self.batches_done += 1
            yield augment.normalize(images, self.mean, self.std), self.labels[index]

    def _plan(self, epoch: int) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """This rank's sample order for `epoch`, and every sample's crop and flip (indexed by sample, so
        a sample's augmentation does not depend on the number of ranks)."""
        n = len(self.labels)
        if not self.train:
            return (
                shard(torch.arange(n), self.rank, self.world_size, drop_last=False).to(self.device),
                None,
                None,
            )
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(n, generator=generator)
        offsets, flips = augment.draw(n, generator, self.padding, self.flip)
        order = shard(order, self.rank, self.world_size, drop_last=True)
        return order.to(self.device), offsets.to(self.device), flips.to(self.device)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batches_done = state["epoch"], state["batches_done"]
        self._continue = 0 < self.batches_done < self.epoch_batches
