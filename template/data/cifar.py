"""CIFAR-10 and CIFAR-100, fetched and read by torchvision.datasets (its download, its md5 table); the
failure path and the checksum-before-unpickling are `downloaded.py`'s.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision import datasets
from torchvision.datasets.utils import download_and_extract_archive

from template.data.datamodule import Split
from template.data.downloaded import Downloaded


class CIFAR(Downloaded):
    dataset: type[datasets.CIFAR10]

    def files(self) -> dict[Path, str]:
        folder, meta = self.root / self.dataset.base_folder, self.dataset.meta
        expected = self.dataset.train_list + self.dataset.test_list + [[meta["filename"], meta["md5"]]]
        return {folder / name: md5 for name, md5 in expected}

    def fetch(self) -> None:
        """torchvision's download also unpacks an archive already in `data.root`: a copy put there works
        offline."""
        download_and_extract_archive(
            self.dataset.url, self.root, filename=self.dataset.filename, md5=self.dataset.tgz_md5
        )

    def offline_hint(self) -> str:
        return f"unpack a {self.dataset.filename} put in {self.root}/"

    def read(self, train: bool) -> Split:
        """torchvision's (N, 32, 32, 3) uint8 array and label list as (N, 3, 32, 32) uint8 and int64."""
        dataset = self.dataset(self.root, train=train)
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.tensor(dataset.targets, dtype=torch.int64)


class CIFAR10(CIFAR):
    """Means and stds over the 50,000 training images, per channel, pixels scaled to [0, 1]."""

    name, title, dataset, num_classes = "cifar10", "CIFAR-10", datasets.CIFAR10, 10
    mean = (0.49139968, 0.48215841, 0.44653091)
    std = (0.24703223, 0.24348513, 0.26158784)


class CIFAR100(CIFAR):
    """Means and stds over the 50,000 training images, per channel, pixels scaled to [0, 1]."""

    name, title, dataset, num_classes = "cifar100", "CIFAR-100", datasets.CIFAR100, 100
    mean = (0.50707516, 0.48654887, 0.44091784)
    std = (0.26733429, 0.25643846, 0.27615047)
