"""SVHN (Street View House Numbers), 3×32×32 colour crops of digits 0-9, fetched and read by
torchvision.datasets.SVHN: its MATLAB files' md5 are checked before scipy decodes them.

The "extra" split (531,131 easier images) is not used: training is on the 73,257 of "train", with
`data.val_size` of them held out. Means and stds are the values commonly quoted for the training
split, pixels scaled to [0, 1]. No flips: a mirrored digit is another glyph or none.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision import datasets
from torchvision.datasets.utils import download_url

from template.data.datamodule import Split
from template.data.downloaded import Downloaded

SPLITS = ("train", "test")


class SVHN(Downloaded):
    name, title, num_classes = "svhn", "SVHN", 10
    mean = (0.4377, 0.4438, 0.4728)
    std = (0.1980, 0.2010, 0.1970)
    flip = False

    def files(self) -> dict[Path, str]:
        table = datasets.SVHN.split_list
        return {self.root / table[split][1]: table[split][2] for split in SPLITS}

    def fetch(self) -> None:
        for split in SPLITS:
            url, filename, md5 = datasets.SVHN.split_list[split]
            if not (self.root / filename).is_file():
                download_url(url, str(self.root), filename, md5)

    def read(self, train: bool) -> Split:
        dataset = datasets.SVHN(self.root, split="train" if train else "test")  # (N, 3, 32, 32), 10 -> 0
        return torch.from_numpy(dataset.data).contiguous(), torch.from_numpy(dataset.labels).to(torch.int64)
