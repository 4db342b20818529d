"""Small CIFAR files in the real on-disk format, for tests that must not download.

CIFAR's python version is a folder of pickled dicts: `cifar-10-batches-py/` holds `data_batch_1` ..
`data_batch_5` and `test_batch` ({"data": uint8 (N, 3072) rows of 1024 red, 1024 green, 1024 blue
pixels, "labels": [int]}) and `batches.meta` ({"label_names": [...]}); `cifar-100-python/` holds
`train` and `test` ({"data", "fine_labels", "coarse_labels"}) and `meta`. The originals were written
by Python 2, whose str keys torchvision decodes with encoding="latin1" into the same str keys these have.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

LAYOUT = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": ("batches.meta", {"label_names": [f"class{i}" for i in range(10)]}),
        "classes": 10,
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": (
            "meta",
            {
                "fine_label_names": [f"fine{i}" for i in range(100)],
                "coarse_label_names": [f"coarse{i}" for i in range(20)],
            },
        ),
        "classes": 100,
    },
}


def fake_images(n: int, seed: int) -> np.ndarray:
    """(n, 3072) uint8 rows as CIFAR stores them; a function of (n, seed)."""
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def fake_labels(n: int, classes: int, seed: int) -> list[int]:
    return [int(label) for label in np.random.default_rng(seed + 1).integers(0, classes, n)]


def write_fake_cifar(root, name: str = "cifar10", n_train: int = 100, n_test: int = 20) -> dict[str, str]:
    """Writes the files under `root` and returns {file name: md5}. The training images are split over
    the batches in order; `read_split` gives back what was written."""
    layout = LAYOUT[name]
    folder = Path(root) / layout["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    label_key = "labels" if name == "cifar10" else "fine_labels"
    md5s = {}
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 100)):
        data, labels = fake_images(n, seed), np.array(fake_labels(n, layout["classes"], seed))
        files = layout[split]
        parts = zip(np.array_split(data, len(files)), np.array_split(labels, len(files)), strict=True)
        for file, (images, part_labels) in zip(files, parts, strict=True):
            entry = {"data": images, label_key: part_labels.tolist()}
            if name == "cifar100":
                entry["coarse_labels"] = (part_labels // 5).tolist()
            md5s[file] = _write(folder / file, entry)
    meta_file, meta = layout["meta"]
    md5s[meta_file] = _write(folder / meta_file, meta)
    return md5s


def read_split(name: str, split: str, n: int) -> tuple[np.ndarray, list[int]]:
    """What write_fake_cifar wrote for `split`: images (n, 3, 32, 32) uint8 and labels."""
    seed = 0 if split == "train" else 100
    return fake_images(n, seed).reshape(n, 3, 32, 32), fake_labels(n, LAYOUT[name]["classes"], seed)


def _write(path: Path, obj) -> str:
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return hashlib.md5(path.read_bytes()).hexdigest()
