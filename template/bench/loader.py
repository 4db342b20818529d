"""`loader_speedup`: augmented images per second from the template's on-device loader, over torchvision's
CIFAR recipe (a DataLoader whose workers turn each uint8 image into a PIL image and run PIL transforms).

Both sides start from the same in-memory uint8 set, apply the same augmentation (4-pixel padded random
32×32 crop, horizontal flip, CIFAR-10's normalisation), use the same batch size, and deliver float
batches on the training device. Each runs two shuffled epochs and is timed over the second, from asking
for the iterator to holding the last batch on the device: the steady state of a training run, whose
DataLoader workers persist across epochs (as the template's do) and whose on-device set was copied
once. No files and no download: the set is random pixels, which cost the same to augment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from template.data import CIFAR10, DeviceLoader


@dataclass
class Images:
    """A CIFAR-shaped uint8 set in memory: images (N, 32, 32, 3) as CIFAR10.data, targets (N,)."""

    images: np.ndarray
    targets: np.ndarray

    @classmethod
    def create(cls, size: int, seed: int = 0) -> Images:
        rng = np.random.default_rng(seed)
        return cls(rng.integers(0, 256, (size, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, size))


class PilCifar(Dataset):
    """torchvision.datasets.CIFAR10's __getitem__ on the in-memory arrays: a PIL image, then the transform."""

    def __init__(self, data: Images):
        self.data = data
        self.transform = transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(CIFAR10.mean, CIFAR10.std),
            ]
        )

    def __len__(self) -> int:
        return len(self.data.targets)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.data.images[index])), int(self.data.targets[index])


def torchvision_loader(data: Images, batch_size: int, workers: int, device: torch.device) -> dict:
    loader = DataLoader(
        PilCifar(data),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )
    return _second_epoch(loader, device)


def device_loader(data: Images, batch_size: int, device: torch.device) -> dict:
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous()  # the loader's (N, C, H, W)
    labels = torch.from_numpy(data.targets)
    loader = DeviceLoader(images, labels, CIFAR10.mean, CIFAR10.std, batch_size, train=True, device=device)
    return _second_epoch(loader, device)


def _second_epoch(loader, device: torch.device) -> dict:
    """Images of the second epoch delivered on `device`, and the seconds it took."""
    for _ in range(2):
        images = 0
        started = time.perf_counter()
        for inputs, _ in loader:
            inputs = inputs.to(device, non_blocking=True)
            images += len(inputs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
    return {"images": images, "seconds": seconds, "images_per_s": images / seconds}
