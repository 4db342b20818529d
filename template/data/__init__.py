"""The data sets: CIFAR-10/100, MNIST, Fashion-MNIST and SVHN (torchvision downloads them into
`data.root`, checksums verified before anything is decoded), scikit-learn's real 8×8 digits (installed
with the package, at their own shape and at CIFAR's) and a synthetic CIFAR-shaped set, both of which need
no network, each a LightningDataModule of any C×H×W served by torchvision's DataLoader or by the
on-device loader (`data.loader`).

    datamodule = data.build(cfg.data, seed)   # -> DataModule: num_classes, image_shape, mean, std,
    datamodule.prepare_data()                 #    prepare_data, setup, *_dataloader, sample_inputs(n)

A new data set is a `DataModule` subclass (`datamodule.py`) that implements `load_splits` (and
`prepare_data` if it fetches files), named in `registry.py`.
"""

from template.data.cifar import CIFAR10, CIFAR100
from template.data.datamodule import DataModule
from template.data.device_loader import DeviceLoader
from template.data.digits import Digits, DigitsCIFAR
from template.data.mnist import MNIST, FashionMNIST
from template.data.registry import DATASETS, available, build
from template.data.svhn import SVHN
from template.data.synthetic import Synthetic

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "DATASETS",
    "MNIST",
    "SVHN",
    "DataModule",
    "DeviceLoader",
    "Digits",
    "DigitsCIFAR",
    "FashionMNIST",
    "Synthetic",
    "available",
    "build",
]
