"""What every data set of the template shares, whatever its source: splits held as uint8 image tensors
(N, C, H, W) of the data set's `image_shape` with int64 labels, the validation split held out of the
training set with a fixed seed, and the two ways of serving them — torchvision's DataLoader with
transforms v2 (`data.loader=torch`, the default) or the on-device loader (`data.loader=device`).

A source subclasses `DataModule` and says how to fetch (`prepare_data`) and read (`load_splits`) its
data. The splits are read on first need — `setup`, or `sample_inputs` before any Trainer exists (a
data-dependent init such as LSUV runs before `fit`).
"""

from __future__ import annotations

from collections.abc import Iterable

import lightning as L
import torch
from omegaconf import DictConfig
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from template.data import augment
from template.data.device_loader import DeviceLoader, rank_and_world_size
from template.data.resumable_loader import ResumableLoader, SeededTransforms
from template.errors import UsageError

SPLIT_SEED = 0  # fixed, not the run's seed: every run validates on the same held-out images

Split = tuple[Tensor, Tensor]  # uint8 images (N, C, H, W), int64 labels (N,)
Batch = tuple[Tensor, Tensor]  # normalised float images (B, C, H, W), int64 labels (B,)


def hold_out(images: Tensor, labels: Tensor, count: int) -> tuple[Split, Split]:
    """(train, val): `count` samples drawn with SPLIT_SEED for validation, the rest for training.
    torch's random_split does this for Datasets; here the splits stay plain tensors, which the
    on-device loader needs."""
    if not 0 <= count < len(labels):
        raise UsageError(f"data.val_size={count} must be smaller than the {len(labels)} training images")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    val, train = order[:count], order[count:]
    return (images[train], labels[train]), (images[val], labels[val])


class ImageTensors(Dataset):
    """One uint8 image tensor through a torchvision transform per sample: the DataLoader path."""

    def __init__(self, images: Tensor, labels: Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), self.labels[index]


class DataModule(L.LightningDataModule):
    """An image classification set. Subclasses set `name`, `num_classes`, `image_shape` (C, H, W) and a
    `mean` and `std` per channel (of pixels scaled to [0, 1]); the models take their input channels from
    `image_shape`, and the training crop its size. `flip = False` for images a mirror changes (digits);
    `crop_padding` sets the random crop's zero padding, an eighth of the height by default (CIFAR's 4)."""

    name: str
    num_classes: int
    image_shape: tuple[int, int, int] = (3, 32, 32)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool = True
    crop_padding: int | None = None

    def __init__(self, cfg: DictConfig, seed: int):
        super().__init__()
        if not len(self.mean) == len(self.std) == self.image_shape[0]:
            raise ValueError(
                f"{type(self).__name__}: mean and std need one value per channel of image_shape "
                f"{tuple(self.image_shape)}, got {len(self.mean)} and {len(self.std)}"
            )
        self.cfg, self.seed = cfg, seed
        self.batch_size = cfg.batch_size
        self.device = torch.device("cpu")  # the training device, learned in setup
        self._splits: dict[str, Split] | None = None
        self._on_device: dict[str, Split] = {}
        self._train_loader: DeviceLoader | ResumableLoader | None = None
        self._restored_position: dict | None = None

    def state_dict(self) -> dict:
        """The training loader's position (epoch, batches done), saved with each checkpoint.

        Lightning restores a loader's own state only when it builds the loader after the restore; a
        schedule that asks for `estimated_stepping_batches` makes it build (and prefetch from) the loader
        earlier, so a resumed run would start its epochs from zero. The DataModule's state is restored
        before that, and handed to the loader as it is made."""
        loader = self._train_loader
        return {} if loader is None else {"train_loader": loader.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self._restored_position = state.get("train_loader", state.get("device_train_loader"))

    def load_splits(self) -> dict[str, Split]:
        """{"train": ..., "val": ..., "test": ...}, read after `prepare_data`."""
        raise NotImplementedError

    @property
    def padding(self) -> int:
        return self.image_shape[1] // 8 if self.crop_padding is None else self.crop_padding

    def splits(self) -> dict[str, Split]:
        if self._splits is None:
            self._splits = self.load_splits()
            self._check_shapes(self._splits)
        return self._splits

    def _check_shapes(self, splits: dict[str, Split]) -> None:
        """A data set whose images are not its declared `image_shape` would otherwise fail later, in the
        first convolution, with a traceback about channels that never names the data set."""
        for split, (images, labels) in splits.items():
            if tuple(images.shape[1:]) != tuple(self.image_shape) or images.dtype != torch.uint8:
                raise ValueError(
                    f"{type(self).__name__}: its {split} images are {images.dtype} "
                    f"{tuple(images.shape[1:])}, not uint8 of its image_shape {tuple(self.image_shape)}"
                )
            if len(labels) != len(images):
                raise ValueError(f"{type(self).__name__}: {len(images)} {split} images, {len(labels)} labels")

    def setup(self, stage: str | None = None) -> None:
        if self.trainer is not None:
            self.device = self.trainer.strategy.root_device
        self.splits()  # read the files now, where Lightning expects it

    def sample_inputs(self, n: int) -> Tensor:
        """n normalised, unaugmented training images (fewer if the split is smaller), for inits fitted
        to data. The training split is already in random order, so its first n are a random sample."""
        images, _ = self.splits()["train"]
        return augment.normalize(images[:n], self.mean, self.std)

    def train_dataloader(self) -> Iterable[Batch]:
        return self._loader("train")

    def val_dataloader(self) -> Iterable[Batch]:
        return self._loader("val")

    def test_dataloader(self) -> Iterable[Batch]:
        return self._loader("test")

    def _loader(self, split: str):
        train = split == "train"
        if self.cfg.loader == "device":
            images, labels = self._device_copy(split)
            loader = DeviceLoader(
                images,
                labels,
                self.mean,
                self.std,
                self.batch_size,
                train=train,
                seed=self.seed,
                device=self.device,
                padding=self.padding,
                flip=self.flip,
            )
            return self._resume_position(loader) if train else loader
        workers = self.cfg.num_workers
        options = dict(
            num_workers=workers, persistent_workers=workers > 0, pin_memory=self.device.type == "cuda"
        )
        if train:
            transform = augment.train_transform(
                self.mean, self.std, self.image_shape[1:], self.padding, self.flip
            )
            dataset = SeededTransforms(*self.splits()[split], transform, self.seed)
            return self._resume_position(
                ResumableLoader(dataset, self.batch_size, *rank_and_world_size(), **options)
            )
        dataset = ImageTensors(*self.splits()[split], augment.eval_transform(self.mean, self.std))
        return DataLoader(dataset, batch_size=self.batch_size, **options)

    def _resume_position(self, loader):
        """The training loader, told how many batches an epoch of the Trainer's has and, after a resume,
        where the checkpoint left it."""
        limit = self.trainer.limit_train_batches if self.trainer is not None else 1.0
        loader.epoch_batches = (
            int(len(loader) * limit) if isinstance(limit, float) else min(len(loader), limit)
        )
        if self._restored_position is not None:
            loader.load_state_dict(self._restored_position)
            self._restored_position = None
        self._train_loader = loader
        return loader

    def _device_copy(self, split: str) -> Split:
        """The split on the training device, copied once however often a loader is asked for."""
        key = f"{split}@{self.device}"
        if key not in self._on_device:
            self._on_device[key] = tuple(t.to(self.device) for t in self.splits()[split])
        return self._on_device[key]
