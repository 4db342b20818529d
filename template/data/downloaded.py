"""What every data set that torchvision downloads shares: the failure path, and the checksum first.

The first run on a new machine is where users meet the download: no network, `data.download=false`
with no files, or a damaged file each become one line that names the problem and the next step,
instead of urllib's traceback or torchvision's "Dataset not found or corrupted".

Every file is checked against torchvision's own md5 table before torchvision opens it. CIFAR's batches
are pickles, and unpickling runs code; SVHN's are MATLAB files and MNIST's gzip archives, whose
decoders should not see a file of unknown origin either. Checking here is also what lets the error
name the file. A subclass says which files it reads (`files`), how to fetch them (`fetch`) and how to
read a split (`read`).
"""

from __future__ import annotations

import socket
import urllib.error
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock
from torchvision.datasets.utils import check_integrity

from template.data.datamodule import DataModule, Split, hold_out
from template.errors import UsageError

OFFLINE = "make train INIT=kaiming DATA=digits_cifar"  # real images that come with the install
DOWNLOAD_TIMEOUT_S = 60  # per connect or read: a network that drops packets fails instead of hanging


class Downloaded(DataModule):
    title: str  # as the error messages write it

    @property
    def root(self) -> Path:
        return Path(self.cfg.root)

    def files(self) -> dict[Path, str]:
        """Every file torchvision reads (or unpacks), with the md5 it expects. Read from torchvision's
        tables each time: tests patch them."""
        raise NotImplementedError

    def fetch(self) -> None:
        """Download the missing files into `root` with torchvision's helpers (which check the md5)."""
        raise NotImplementedError

    def offline_hint(self) -> str:
        """Where files copied by hand go, for the message when they are missing and downloads are off."""
        return f"put its files in {self.root}/"

    def read(self, train: bool) -> Split:
        """The split's uint8 images (N, C, H, W) and int64 labels, from the verified files."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Download when files are missing (and `data.download`), then verify every file.

        Every process of a job may get here at once: torchrun starts them together, and `train` needs
        the data (for a data-dependent init) before Lightning's own rank-zero `prepare_data`. A file
        lock in `data.root` lets the first process download while the others wait and then find the
        files in place, rather than each fetching and unpacking the archive over the others."""
        missing = self._missing()
        if missing and not self.cfg.download:
            raise UsageError(
                f"{self.title} is not in {self.root}/ ({missing[0]} is missing) and data.download=false; "
                f"set data.download=true to download it (or {self.offline_hint()}), or train offline: "
                f"{OFFLINE}"
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
        self.verify()

    def _missing(self) -> list[Path]:
        return [path for path in self.files() if not path.is_file()]

    def _download(self) -> None:
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                self.fetch()
        except (OSError, RuntimeError) as error:  # urllib's URLError is an OSError
            raise UsageError(
                f"{self.title} could not be downloaded into {self.root}/ ({_reason(error)}); "
                f"to train offline: {OFFLINE}"
            ) from None

    def verify(self) -> None:
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
        self.verify()  # also when prepare_data ran in another process (DDP) or not at all
        train, val = hold_out(*self.read(train=True), self.cfg.val_size)
        return {"train": train, "val": val, "test": self.read(train=False)}


def _reason(error: Exception) -> str:
    """A few words on why a download failed, from urllib's or torchvision's exception."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, RuntimeError):  # torchvision: the download's md5 did not match
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
