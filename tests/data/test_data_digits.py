"""MNIST, Fashion-MNIST and SVHN through their real torchvision classes, on small files in the real
formats: the splits hold the files' images in (N, C, H, W), both loaders serve them at their own shape,
and a file that fails its md5 is named and never decoded."""

import gzip

import numpy as np
import pytest
import scipy.io
import torch
from torchvision import datasets

from template import data
from template.errors import UsageError
from tests.helpers.fake_digits import MNIST_FILES, digits

CASES = [
    ("mnist", (1, 28, 28), "MNIST"),
    ("fashion_mnist", (1, 28, 28), "Fashion-MNIST"),
    ("svhn", (3, 32, 32), "SVHN"),
]


@pytest.fixture
def fake(fake_mnist, fake_svhn):
    """`fake(name, n_train, n_test)` writes the named set's files under tmp_path/"data"."""

    def write(name, n_train=60, n_test=20):
        return fake_svhn(n_train, n_test) if name == "svhn" else fake_mnist(name, n_train, n_test)

    return write


@pytest.mark.parametrize("name, shape, title", CASES)
def test_splits_hold_the_files_images_channels_first(fake, data_cfg, name, shape, title):
    fake(name, n_train=60, n_test=20)
    module = data.build(data_cfg(name=name, val_size=10), seed=0)
    module.prepare_data()
    module.setup("fit")
    splits = module.splits()
    assert module.image_shape == shape and module.num_classes == 10 and len(module.mean) == shape[0]
    assert [len(splits[split][1]) for split in ("train", "val", "test")] == [50, 10, 20]
    images, labels = digits(20, shape[1:] if name != "svhn" else shape, seed=100)
    test_images, test_labels = splits["test"]
    assert test_images.dtype == torch.uint8 and test_images.shape == (20, *shape)
    assert torch.equal(test_images, torch.from_numpy(images).reshape(20, *shape))
    assert test_labels.dtype == torch.int64 and test_labels.tolist() == labels.tolist()  # SVHN's 10 is 0


@pytest.mark.parametrize("name, shape, title", CASES)
@pytest.mark.parametrize("loader", ["torch", "device"])
def test_both_loaders_serve_batches_of_the_data_sets_shape(fake, data_cfg, name, shape, title, loader):
    fake(name)
    module = data.build(data_cfg(name=name, val_size=10, batch_size=8, loader=loader), seed=0)
    module.prepare_data()
    module.setup("fit")
    for each in (module.train_dataloader(), module.val_dataloader()):
        images, labels = next(iter(each))
        assert images.shape == (8, *shape) and images.dtype == torch.float32 and labels.dtype == torch.int64


def test_digits_are_not_flipped_and_clothes_are(data_cfg):
    assert not data.DATASETS["mnist"].flip and not data.DATASETS["svhn"].flip
    assert data.DATASETS["fashion_mnist"].flip and data.DATASETS["cifar10"].flip
    module = data.build(data_cfg(name="mnist"), seed=0)
    assert module.padding == 3  # an eighth of 28, rounded down


@pytest.mark.parametrize("name, shape, title", CASES)
def test_missing_files_without_download_is_one_line(data_cfg, tmp_path, name, shape, title):
    with pytest.raises(UsageError) as error:
        data.build(data_cfg(name=name, download=False), seed=0).prepare_data()
    text = str(error.value)
    assert text.startswith(f"{title} is not in {tmp_path / 'data'}/ (") and "\n" not in text
    assert text.endswith("or train offline: make train INIT=kaiming DATA=digits_cifar")


@pytest.mark.parametrize("stage", ["prepare_data", "setup"])
def test_a_mnist_archive_failing_its_md5_is_named_and_never_decoded(fake_mnist, data_cfg, monkeypatch, stage):
    raw = fake_mnist("mnist")
    damaged = raw / MNIST_FILES["train"][0]
    damaged.write_bytes(gzip.compress(b"not what torchvision's table says"))
    decoded = []
    monkeypatch.setattr(gzip, "decompress", lambda *args, **kwargs: decoded.append(args) or b"")
    monkeypatch.setattr(datasets.mnist, "read_sn3_pascalvincent_tensor", lambda *a, **k: decoded.append(a))
    with pytest.raises(UsageError) as error:
        getattr(data.build(data_cfg(name="mnist"), seed=0), stage)()
    assert str(error.value) == (
        f"{damaged} is corrupted or incomplete (its md5 is not MNIST's); delete it and run again to fetch a "
        "fresh copy"
    )
    assert decoded == [] and not damaged.with_suffix("").exists()


def test_an_unpacked_file_that_differs_from_its_verified_archive_is_unpacked_again(fake_mnist, data_cfg):
    raw = fake_mnist("mnist", n_train=60, n_test=20)
    module = data.build(data_cfg(name="mnist", val_size=10), seed=0)
    module.prepare_data()  # unpacks the archives next to themselves
    unpacked = raw / MNIST_FILES["test"][0].removesuffix(".gz")
    unpacked.write_bytes(unpacked.read_bytes()[:-5] + b"\xff" * 5)  # tampered after the check
    fresh = data.build(data_cfg(name="mnist", val_size=10), seed=0)
    fresh.prepare_data()
    images, _ = digits(20, (28, 28), seed=100)
    assert torch.equal(fresh.splits()["test"][0][:, 0], torch.from_numpy(images))


@pytest.mark.parametrize("stage", ["prepare_data", "setup"])
def test_an_svhn_file_failing_its_md5_is_named_and_never_decoded(fake_svhn, data_cfg, monkeypatch, stage):
    root = fake_svhn()
    damaged = root / "test_32x32.mat"
    scipy.io.savemat(damaged, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((2, 1), np.uint8)})
    decoded = []
    monkeypatch.setattr(scipy.io, "loadmat", lambda *args, **kwargs: decoded.append(args))
    with pytest.raises(UsageError) as error:
        getattr(data.build(data_cfg(name="svhn"), seed=0), stage)()
    assert str(error.value) == (
        f"{damaged} is corrupted or incomplete (its md5 is not SVHN's); delete it and run again to fetch a "
        "fresh copy"
    )
    assert decoded == []


@pytest.mark.parametrize("name", ["mnist", "svhn"])
def test_download_fetches_and_verifies(fake, http_folder, data_cfg, tmp_path, monkeypatch, name):
    """From a loopback server standing in for torchvision's mirror: the files land where torchvision
    reads them and pass their md5."""
    served = fake(name)
    files = sorted(served.glob("*.gz" if name == "mnist" else "*.mat"))
    for file in files:
        (http_folder.folder / file.name).write_bytes(file.read_bytes())
    if name == "mnist":
        monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/", f"{http_folder.url}/"])
    else:
        table = {s: [f"{http_folder.url}/{f}", f, m] for s, (_, f, m) in datasets.SVHN.split_list.items()}
        monkeypatch.setattr(datasets.SVHN, "split_list", table)
    module = data.build(data_cfg(name=name, root=str(tmp_path / "fresh"), val_size=10), seed=0)
    module.prepare_data()
    module.setup("fit")
    assert [len(module.splits()[split][1]) for split in ("train", "val", "test")] == [50, 10, 20]
    # torchvision asks more than once per file (it first follows redirects); each file was asked for
    assert {request.split()[1].lstrip("/") for request in http_folder.requests} == {f.name for f in files}
