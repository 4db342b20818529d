"""The loader measurements: augmented training images per second as a run's loop receives them, from
the template's two paths (`data.loader=device` and its default `data.loader=torch`: a DataLoader with
`data.num_workers` workers and transforms v2 on uint8 tensors) and from torchvision's classic PIL
recipe on the same images, workers and batch size — the CIFAR example most projects start from — as a
second reference.
"""

from __future__ import annotations

import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class PilImages(Dataset):
    """The images as PIL images, each through a transform when read, as torchvision's CIFAR10 does."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = [Image.fromarray(image.permute(1, 2, 0).squeeze(-1).numpy()) for image in images]
        self.labels, self.transform = labels.tolist(), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), self.labels[index]


def pil_loader(module) -> DataLoader:
    """torchvision's PIL recipe — RandomCrop with the data set's padding, RandomHorizontalFlip,
    ToTensor, Normalize — over `module`'s training images, with its batch size and workers."""
    images, labels = module.splits()["train"]
    crop = [transforms.RandomCrop(tuple(module.image_shape[1:]), padding=module.padding)]
    flip = [transforms.RandomHorizontalFlip()] if module.flip else []
    tensor = [transforms.ToTensor(), transforms.Normalize(module.mean, module.std)]
    recipe = transforms.Compose([*crop, *flip, *tensor])
    workers = module.cfg.num_workers
    return DataLoader(
        PilImages(images, labels, recipe),
        batch_size=module.batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=module.device.type == "cuda",
    )


def loader_epoch(loader, device: torch.device) -> dict:
    """Augmented images per second from a training loader, delivered on `device`: two epochs, the
    second timed, from asking for the iterator to holding its last batch — the steady state of a run
    whose workers persist and whose on-device copy was made once."""
    for _ in range(2):
        images, started = 0, time.perf_counter()
        for inputs, _ in loader:
            images += len(inputs.to(device, non_blocking=True))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
    return {"images": images, "seconds": seconds, "images_per_s": images / seconds}
