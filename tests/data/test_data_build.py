"""`data.build` and the data modules inside Lightning: the loaders each setting asks for, and a run
resumed from a mid-epoch checkpoint that sees exactly the batches an unbroken run saw."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader

from template import data
from template.data.cifar import CIFAR10, CIFAR100
from template.data.device_loader import DeviceLoader
from template.data.resumable_loader import EpochSampler
from template.data.synthetic import Synthetic
from template.errors import UsageError

SMALL = dict(name="synthetic", synthetic_train_size=200, val_size=40, synthetic_test_size=40, batch_size=32)


@pytest.mark.parametrize(
    "name, module", [("cifar10", CIFAR10), ("cifar100", CIFAR100), ("synthetic", Synthetic)]
)
def test_build_returns_the_named_module_without_reading_anything(data_cfg, tmp_path, name, module):
    built = data.build(data_cfg(name=name), seed=0)
    assert type(built) is module and isinstance(built, L.LightningDataModule)
    assert built.image_shape == (3, 32, 32) and len(built.mean) == len(built.std) == 3
    assert not (tmp_path / "data").exists()


def test_unknown_name_is_refused(data_cfg):
    with pytest.raises(UsageError) as caught:
        data.build(data_cfg(name="imagenet"), seed=0)
    assert str(caught.value) == (
        "data.name='imagenet' is unknown; choose one of: "
        "cifar10, cifar100, mnist, fashion_mnist, svhn, digits, digits_cifar, synthetic"
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_torch_loader_settings(data_cfg, workers):
    module = data.build(data_cfg(**SMALL, num_workers=workers), seed=0)
    module.setup("fit")
    train, val = module.train_dataloader(), module.val_dataloader()
    assert isinstance(train, DataLoader) and train.batch_size == 32 and train.num_workers == workers
    assert train.persistent_workers == (workers > 0) and len(train.dataset) == 160 and len(val.dataset) == 40
    assert isinstance(train.sampler, EpochSampler)
    assert isinstance(val.sampler, torch.utils.data.SequentialSampler)


def test_device_loader_settings(data_cfg):
    module = data.build(data_cfg(**SMALL, loader="device"), seed=5)
    module.setup("fit")
    train, test = module.train_dataloader(), module.test_dataloader()
    assert isinstance(train, DeviceLoader) and train.train and train.seed == 5 and len(train) == 5
    assert isinstance(test, DeviceLoader) and not test.train and len(test) == 2
    assert train.images is module.train_dataloader().images  # copied to the device once


class Recorder(L.LightningModule):
    """A linear classifier that remembers a fingerprint of every training batch."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
        self.seen = []

    def training_step(self, batch, index):
        images, labels = batch
        self.seen.append((images.sum().item(), labels.tolist()))
        return nn.functional.cross_entropy(self.net(images), labels)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(cfg, tmp_path, ckpt_path=None, callbacks=(), max_epochs=2, **trainer):
    torch.manual_seed(0)
    module, datamodule = Recorder(), data.build(cfg, seed=1)
    trainer = L.Trainer(
        **trainer,
        accelerator="cpu",
        max_epochs=max_epochs,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=bool(callbacks),
        callbacks=list(callbacks),
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return module.seen


@pytest.mark.filterwarnings(
    "ignore:.*no `validation_step`", "ignore:.*callbacks used to create the checkpoint"
)
@pytest.mark.parametrize("loader, workers", [("device", 0), ("torch", 0), ("torch", 2)])
def test_resume_from_a_mid_epoch_checkpoint_continues_the_batch_order(data_cfg, tmp_path, loader, workers):
    cfg = data_cfg(**SMALL, loader=loader, num_workers=workers)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=7, save_top_k=-1)
    unbroken = fit(cfg, tmp_path, callbacks=[checkpoint])  # 2 epochs of 5 batches; saved after step 7
    assert len(unbroken) == 10
    saved = torch.load(tmp_path / "ckpt" / "epoch=1-step=7.ckpt", weights_only=True)
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 1, "batches_done": 2}]
    resumed = fit(cfg, tmp_path, ckpt_path=tmp_path / "ckpt" / "epoch=1-step=7.ckpt")
    assert resumed == unbroken[7:]


def test_torch_loader_batches_do_not_depend_on_the_workers(data_cfg, tmp_path):
    """Each sample's crop and flip come from (seed, epoch, index), not from the worker that loads it."""
    seen = [fit(data_cfg(**SMALL, num_workers=workers), tmp_path / str(workers)) for workers in (0, 1, 2)]
    assert seen[0] == seen[1] == seen[2]
    assert seen[0][:5] != seen[0][5:]  # and epoch 1 is not epoch 0 again


@pytest.mark.filterwarnings(
    "ignore:.*no `validation_step`", "ignore:.*callbacks used to create the checkpoint"
)
@pytest.mark.parametrize("loader", ["device", "torch"])
def test_resume_at_the_end_of_a_limited_epoch_starts_the_next_epoch(data_cfg, tmp_path, loader):
    """With `limit_train_batches`, an epoch ends before the loader is exhausted: a checkpoint there
    resumes with the next epoch's first batch, not the rest of the cut-short one."""
    cfg = data_cfg(**SMALL, loader=loader)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1)
    unbroken = fit(cfg, tmp_path, callbacks=[checkpoint], max_epochs=3, limit_train_batches=3)
    assert len(unbroken) == 9
    resumed = fit(
        cfg,
        tmp_path,
        max_epochs=3,
        limit_train_batches=3,
        ckpt_path=tmp_path / "ckpt" / "epoch=0-step=3.ckpt",
    )
    assert resumed == unbroken[3:]
