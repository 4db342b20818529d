"""The DataLoader path (`data.loader=torch`) made resumable: a run killed mid-epoch and resumed draws
exactly the batches, and the augmented pixels, that the unbroken run drew — with any number of workers.

Two sources of randomness make a torch DataLoader irreproducible across a resume: the shuffle (drawn
by the main process when each epoch's iterator is made) and the random transforms (drawn by each worker
from a generator seeded when the worker starts, whose state no checkpoint holds). Both are replaced by
functions of what a checkpoint holds:

- the order is DistributedSampler's — a permutation seeded by seed + epoch, each rank its interleaved
  slice — started at the first sample the checkpoint had not yet trained on;
- each sample's transform runs on the global generator reseeded from (seed, epoch, sample index), in
  whichever worker loads it, so its crop and flip do not depend on the worker, the number of workers,
  or what ran before. Any torchvision random transform a fork adds is covered the same way.

Chosen over torchdata's StatefulDataLoader, which snapshots the sampler and each worker's dataset state
but not the generators the workers' transforms draw from, and whose state a checkpoint must carry per
worker; here the state is two integers (epoch, batches done), like the on-device loader's, and the
batches are the same whatever `data.num_workers` is, so it may change on resume.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one sample of one epoch (numpy's SeedSequence: nearby inputs give
    unrelated outputs, unlike seed + epoch + index)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0] >> 1)


class SeededTransforms(Dataset):
    """uint8 images through a (random) transform drawn from (seed, epoch, index); items are the
    (epoch, index) pairs `EpochSampler` yields. `fork_rng` puts the caller's generator back afterwards,
    which matters with `num_workers=0`, where the caller is the training process."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform, seed: int):
        self.images, self.labels, self.transform, self.seed = images, labels, transform, seed

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item: tuple[int, int]):
        epoch, index = item
        with torch.random.fork_rng(devices=[]):
            # the CPU generator alone, which torchvision's transforms draw from: torch.manual_seed also
            # seeds every accelerator's generators, 0.2-0.35 ms a call on a CUDA build even with no GPU —
            # more than the transform itself, and once per sample
            torch.default_generator.manual_seed(sample_seed(self.seed, epoch, index))
            image = self.transform(self.images[index])
        return image, self.labels[index]


class EpochSampler(DistributedSampler):
    """DistributedSampler(shuffle=True, drop_last=True) over one rank's share, yielding (epoch, index),
    and starting `skip` samples into the epoch once after a resume. Being a DistributedSampler, Lightning
    leaves it in place under DDP instead of wrapping it."""

    def __init__(self, size: int, seed: int, rank: int, world_size: int):
        super().__init__(
            range(size), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.skip = 0

    def __iter__(self):
        order = list(super().__iter__())[self.skip :]
        epoch, self.skip = self.epoch, 0
        return iter([(epoch, index) for index in order])


class ResumableLoader(DataLoader):
    """A DataLoader over `EpochSampler` whose position — the epoch and the batches of it handed to the
    training loop — is its state (`state_dict` / `load_state_dict`, which Lightning saves with the fit
    loop). Lightning asks a sized loader for batches one at a time, so the batches handed out are the
    batches trained on. An epoch starts at each `iter()` that does not continue a restored one."""

    def __init__(self, dataset: SeededTransforms, batch_size: int, rank: int, world_size: int, **options):
        sampler = EpochSampler(len(dataset), dataset.seed, rank, world_size)
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, **options)
        self.epoch = -1  # the epoch being (or last) iterated
        self.batches_done = 0  # batches of that epoch already handed out
        self.epoch_batches = len(self)  # batches the Trainer takes per epoch (`limit_train_batches`)
        self._continue = False  # the next iter() resumes `epoch` after a load_state_dict

    def __iter__(self):
        if self._continue:
            self._continue = False
        else:
            self.epoch, self.batches_done = self.epoch + 1, 0
        self.sampler.set_epoch(self.epoch)
        self.sampler.skip = self.batches_done * self.batch_size
        for batch in super().__iter__():
            self.batches_done += 1
            yield batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batches_done = state["epoch"], state["batches_done"]
        self._continue = 0 < self.batches_done < self.epoch_batches
