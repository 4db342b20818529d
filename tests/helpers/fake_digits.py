"""Small MNIST-family and SVHN files in their real on-disk formats, for tests that must not download.

MNIST and Fashion-MNIST: gzip archives of IDX files (a big-endian header — magic 0x0803 for uint8 images
of 3 dimensions, 0x0801 for uint8 labels of 1 — then the row-major bytes), in `<root>/<Class>/raw/`.
SVHN: MATLAB files `train_32x32.mat` / `test_32x32.mat` with X (32, 32, 3, N) uint8 and y (N, 1) in
1..10, where 10 is the digit 0.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import scipy.io

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def digits(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 images of `shape` and labels in 0..9; a function of (n, shape, seed)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def _idx(array: np.ndarray) -> bytes:
    magic = 0x0800 | array.ndim
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def write_fake_mnist(raw: Path, n_train: int, n_test: int) -> dict[str, str]:
    """The four archives under `raw`; returns {archive name: md5}."""
    raw.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 100)):
        images, labels = digits(n, (28, 28), seed)
        for name, array in zip(MNIST_FILES[split], (images, labels), strict=True):
            (raw / name).write_bytes(gzip.compress(_idx(array)))
            md5s[name] = hashlib.md5((raw / name).read_bytes()).hexdigest()
    return md5s


def write_fake_svhn(root: Path, n_train: int, n_test: int) -> dict[str, str]:
    """The two MATLAB files under `root`; returns {file name: md5}. Labels are stored as SVHN does."""
    root.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 100)):
        images, labels = digits(n, (3, 32, 32), seed)
        path = root / f"{split}_32x32.mat"
        stored = np.where(labels == 0, 10, labels).astype(np.uint8)[:, None]
        scipy.io.savemat(path, {"X": images.transpose(2, 3, 1, 0), "y": stored})
        md5s[path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    return md5s
