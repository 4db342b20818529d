"""MNIST and Fashion-MNIST, 1×28×28 grey images of 10 classes, fetched and read by torchvision.datasets.

torchvision's md5 table covers the gzip archives it downloads, not the files it unpacks and reads; so
the archives are verified, and each unpacked file is then checked to be exactly its verified archive's
content (and unpacked again if it is not) before torchvision decodes it. The archives stay in
`data.root/<MNIST|FashionMNIST>/raw/` next to what they unpack to.

Means and stds are the values commonly quoted for the 60,000 training images (MNIST's are those of
PyTorch's own MNIST example), pixels scaled to [0, 1]. Digits are not flipped (a mirrored 2 is no 2);
clothes are.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from urllib.error import URLError

import torch
from torchvision import datasets
from torchvision.datasets.utils import download_and_extract_archive, extract_archive

from template.data.datamodule import Split
from template.data.downloaded import Downloaded


class MNISTFamily(Downloaded):
    dataset: type[datasets.MNIST]
    image_shape = (1, 28, 28)
    num_classes = 10

    @property
    def raw(self) -> Path:
        return self.root / self.dataset.__name__ / "raw"  # torchvision's MNIST.raw_folder

    def files(self) -> dict[Path, str]:
        return {self.raw / name: md5 for name, md5 in self.dataset.resources}

    def fetch(self) -> None:
        """Each missing archive from the first of torchvision's mirrors that serves it."""
        for path, md5 in self.files().items():
            if path.is_file():
                continue
            for index, mirror in enumerate(self.dataset.mirrors):
                try:
                    download_and_extract_archive(
                        f"{mirror}{path.name}", self.raw, filename=path.name, md5=md5
                    )
                    break
                except (RuntimeError, URLError):
                    if index == len(self.dataset.mirrors) - 1:
                        raise

    def offline_hint(self) -> str:
        return f"put its .gz files in {self.raw}/"

    def verify(self) -> None:
        super().verify()
        for archive in self.files():
            unpacked = archive.with_suffix("")  # train-images-idx3-ubyte.gz -> train-images-idx3-ubyte
            content = hashlib.md5(gzip.decompress(archive.read_bytes())).hexdigest()
            if not unpacked.is_file() or hashlib.md5(unpacked.read_bytes()).hexdigest() != content:
                extract_archive(str(archive), str(unpacked.parent))

    def read(self, train: bool) -> Split:
        dataset = self.dataset(self.root, train=train)  # images (N, 28, 28) uint8, targets int64
        return dataset.data[:, None].contiguous(), dataset.targets.to(torch.int64)


class MNIST(MNISTFamily):
    name, title, dataset = "mnist", "MNIST", datasets.MNIST
    mean, std = (0.1307,), (0.3081,)
    flip = False


class FashionMNIST(MNISTFamily):
    name, title, dataset = "fashion_mnist", "Fashion-MNIST", datasets.FashionMNIST
    mean, std = (0.2860,), (0.3530,)
