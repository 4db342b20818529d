"""CIFAR-10 and CIFAR-100, fetched and read by torchvision.datasets (its download, its md5 table).

What is added here is the failure path, because the first run on a new machine is where users meet
it: no network, `data.download=false` with no files, or a damaged file each become one line that
names the problem and the next step, instead of urllib's traceback or torchvision's "Dataset not found
or corrupted".

Every file is checked against torchvision's md5 before torchvision opens it. CIFAR's batches are
pickles, and unpickling runs code; torchvision checks the same sums before it loads, and checking
first here is what lets the error name the file.
"""

from __future__ import annotations

import socket
import urllib.error
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock
from torchvision import datasets
from torchvision.datasets.utils import check_integrity, download_and_extract_archive

from template.data.datamodule import DataModule, Split, hold_out
from template.errors import UsageError

OFFLINE = "make train INIT=kaiming DATA=synthetic"
DOWNLOAD_TIMEOUT_S = 60  # per connect or read: a network that drops packets fails instead of hanging


class CIFAR(DataModule):
    dataset: type[datasets.CIFAR10]
    title: str  # as the error messages write it

    @property
    def root(self) -> Path:
        return Path(self.cfg.root)

    def files(self) -> dict[Path, str]:
        """Every file torchvision reads, with the md5 it expects (read now: tests patch the table)."""
        folder, meta = self.root / self.dataset.base_folder, self.dataset.meta
        expected = self.dataset.train_list + self.dataset.test_list + [[meta["filename"], meta["md5"]]]
        return {folder / name: md5 for name, md5 in expected}

    def prepare_data(self) -> None:
        """Download when files are missing (and `data.download`), then verify every file. torchvision's
        download also unpacks an archive already in `data.root`, so a copy put there works offline.

        Every process of a job may get here at once: torchrun starts them together, and `train` needs
        the data (for a data-dependent init) before Lightning's own rank-zero `prepare_data`. A file
        lock in `data.root` lets the first process download while the others wait and then find the
        files in place, rather than each fetching and unpacking the archive over the others."""
        missing = self._missing()
        if missing and not self.cfg.download:
            raise UsageError(
                f"{self.title} is not in {self.root}/ ({missing[0]} is missing) and data.download=false; "
                f"set data.download=true to download it (or unpack a {self.dataset.filename} put in "
                f"{self.root}/), or train offline: {OFFLINE}"
            )
        if missing:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise UsageError(
                    f"cannot create data.root={self.root}: {error.strerror}; "
                    "set data.root= to a writable folder"
                ) from None
            with FileLock(self.root / f".{self.name}.lock"):
                if self._missing():  # another process may have fetched them while this one waited
                    self._download()
        self._verify()

    def _missing(self) -> list[Path]:
        return [path for path in self.files() if not path.is_file()]

    def _download(self) -> None:
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                download_and_extract_archive(
                    self.dataset.url, self.root, filename=self.dataset.filename, md5=self.dataset.tgz_md5
                )
        except (OSError, RuntimeError) as error:  # urllib's URLError is an OSError
            raise UsageError(
                f"{self.title} could not be downloaded into {self.root}/ ({_reason(error)}); "
                f"to train offline: {OFFLINE}"
            ) from None

    def _verify(self) -> None:
        for path, md5 in self.files().items():
            if not path.is_file():
                raise UsageError(
                    f"{self.title} is not in {self.root}/ ({path} is missing); run prepare_data first"
                )
            if not check_integrity(path, md5):
                raise UsageError(
                    f"{path} is corrupted or incomplete (its md5 is not {self.title}'s); "
                    f"delete it and run again to fetch a fresh copy"
                )

    def load_splits(self) -> dict[str, Split]:
        self._verify()  # also when prepare_data ran in another process (DDP) or not at all
        train = _tensors(self.dataset(self.root, train=True))
        test = _tensors(self.dataset(self.root, train=False))
        train, val = hold_out(*train, self.cfg.val_size)
        return {"train": train, "val": val, "test": test}


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


def _tensors(dataset: datasets.CIFAR10) -> Split:
    """torchvision's (N, 32, 32, 3) uint8 array and label list as (N, 3, 32, 32) uint8 and int64."""
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(dataset.targets, dtype=torch.int64)


def _reason(error: Exception) -> str:
    """A few words on why a download failed, from urllib's or torchvision's exception."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, RuntimeError):  # torchvision: the archive's md5 did not match
        return "the downloaded archive failed its checksum"
    cause = error.reason if isinstance(error, urllib.error.URLError) else error
    text = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
    return (text[:1].lower() + text[1:]) or type(cause).__name__


@contextmanager
def _socket_timeout(seconds: float):
    """torchvision's download has no timeout; urllib uses the socket default, so set it meanwhile."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
