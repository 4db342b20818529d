"""The data sets by `data.name`: the one list the config validates against and `build` reads.

A new data set is one import and one name in the `datasets(...)` line below (docs/forking.md's Forking
section shows it for a data set of another shape).
"""

from __future__ import annotations

from omegaconf import DictConfig

from template.data.cifar import CIFAR10, CIFAR100
from template.data.datamodule import DataModule
from template.data.digits import Digits, DigitsCIFAR
from template.data.mnist import MNIST, FashionMNIST
from template.data.svhn import SVHN
from template.data.synthetic import Synthetic
from template.errors import UsageError


def datasets(*modules: type[DataModule]) -> dict[str, type[DataModule]]:
    return {module.name: module for module in modules}


DATASETS = datasets(CIFAR10, CIFAR100, MNIST, FashionMNIST, SVHN, Digits, DigitsCIFAR, Synthetic)


def available() -> list[str]:
    return list(DATASETS)


def build(cfg: DictConfig, seed: int) -> DataModule:
    """The data module `cfg` (a DataConfig) names; nothing is read or downloaded until `prepare_data`."""
    if cfg.name not in DATASETS:
        raise UsageError(f"data.name={cfg.name!r} is unknown; choose one of: {', '.join(available())}")
    return DATASETS[cfg.name](cfg, seed)
