"""The data sets: CIFAR-10 and CIFAR-100 (torchvision downloads them into `data.root`) and a synthetic
CIFAR-shaped set that needs no network, each a LightningDataModule served by torchvision's DataLoader
or by the on-device loader (`data.loader`).

    datamodule = data.build(cfg.data, seed)   # -> DataModule: num_classes, image_shape, mean, std,
    datamodule.prepare_data()                 #    prepare_data, setup, *_dataloader, sample_inputs(n)

A new data set is a `DataModule` subclass that implements `load_splits` (and `prepare_data` if it
fetches files), added to `DATASETS` and to the choices of `data.name` in `template/schema.py`.
"""

from omegaconf import DictConfig

from template.data.cifar import CIFAR10, CIFAR100
from template.data.datamodule import DataModule
from template.data.device_loader import DeviceLoader
from template.data.synthetic import Synthetic
from template.errors import UsageError

DATASETS: dict[str, type[DataModule]] = {module.name: module for module in (CIFAR10, CIFAR100, Synthetic)}

__all__ = ["DATASETS", "DataModule", "DeviceLoader", "build"]


def build(cfg: DictConfig, seed: int) -> DataModule:
    """The data module `cfg` (a DataConfig) names; nothing is read or downloaded until `prepare_data`."""
    if cfg.name not in DATASETS:
        raise UsageError(f"data.name={cfg.name!r} is unknown; choose one of: {', '.join(DATASETS)}")
    return DATASETS[cfg.name](cfg, seed)
