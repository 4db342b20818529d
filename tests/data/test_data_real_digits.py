"""scikit-learn's 1,797 real digits, at their own shape (`digits`) and at CIFAR's (`digits_cifar`): the
pixels are scikit-learn's own (read back through its public loader, an independent reader of the same
file), the splits are disjoint and cover every image, the stated means and stds are the data's, both
loaders serve batches of each shape, and nothing opens a socket."""

import socket

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from template import data
from template.data import digits as digits_module
from template.errors import UsageError

SHAPES = {"digits": (1, 8, 8), "digits_cifar": (3, 32, 32)}


@pytest.fixture
def no_network(monkeypatch):
    """Any socket the code under test opens fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_pixels_and_labels_are_scikit_learns():
    images, labels = digits_module.read()
    reference = load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.uint8
    expected = np.rint(reference.images * 255 / 16).astype(np.uint8)
    assert np.array_equal(images[:, 0].numpy(), expected)
    assert np.array_equal(labels.numpy(), reference.target)


@pytest.mark.parametrize("name", SHAPES)
def test_splits_are_disjoint_cover_every_image_and_keep_their_shape(no_network, data_cfg, name):
    module = data.build(data_cfg(name=name), seed=3)
    module.prepare_data()
    module.setup("fit")
    splits = module.splits()
    assert {split: len(labels) for split, (_, labels) in splits.items()} == {
        "train": 1123,  # 1797 - 300 test - 374 validation (a quarter of the rest: val_size is 5000)
        "val": 374,
        "test": 300,
    }
    rows = torch.cat(
        [torch.cat([i.flatten(1), labels[:, None].to(torch.uint8)], 1) for i, labels in splits.values()]
    )
    assert rows.shape[1] == np.prod(SHAPES[name]) + 1 and len(rows) == 1797
    if name == "digits":  # the very (image, label) rows of the file, each once
        images, labels = digits_module.read()
        assert _multiset(rows) == _multiset(
            torch.cat([images.flatten(1), labels[:, None].to(torch.uint8)], 1)
        )
    for split, (_, labels) in splits.items():
        assert set(labels.tolist()) == set(range(10)), split


def _multiset(rows: torch.Tensor):
    values, counts = np.unique(rows.numpy(), axis=0, return_counts=True)
    return values.tobytes(), counts.tolist()


def test_the_test_split_does_not_depend_on_the_seed(data_cfg):
    first, second = (data.build(data_cfg(name="digits"), seed=s).splits()["test"] for s in (0, 7))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_the_cifar_shaped_twin_is_the_same_images_upsampled(data_cfg):
    small = data.build(data_cfg(name="digits"), seed=0).splits()["test"]
    large = data.build(data_cfg(name="digits_cifar"), seed=0).splits()["test"]
    assert torch.equal(small[1], large[1])
    assert torch.equal(large[0][:, 0], large[0][:, 2])  # grey in three channels
    # torch's own bilinear interpolation (align_corners=False) of the 8x8 images, to within rounding
    expected = torch.nn.functional.interpolate(small[0].float(), size=(32, 32), mode="bilinear")
    assert (large[0][:, :1].float() - expected).abs().max() <= 1


@pytest.mark.parametrize("name", SHAPES)
def test_stated_mean_and_std_are_the_datas(data_cfg, name):
    module = data.build(data_cfg(name=name), seed=0)
    images = torch.cat([i for i, _ in module.splits().values()]).float() / 255
    # every image once: the constants are the full set's, rounded to 4 decimals
    assert images.mean().item() == pytest.approx(module.mean[0], abs=1e-4)
    assert images.std().item() == pytest.approx(module.std[0], abs=1e-4)


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("loader", ["torch", "device"])
def test_both_loaders_serve_batches_without_network(no_network, data_cfg, name, loader):
    module = data.build(data_cfg(name=name, batch_size=16, loader=loader), seed=0)
    module.prepare_data()
    module.setup("fit")
    for each in (module.train_dataloader(), module.val_dataloader(), module.test_dataloader()):
        images, labels = next(iter(each))
        assert images.shape == (16, *SHAPES[name]) and images.dtype == torch.float32
        assert labels.dtype == torch.int64


def test_without_scikit_learn_the_message_says_how_to_get_it(monkeypatch, data_cfg):
    def missing(name):
        raise digits_module.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(digits_module.importlib.metadata, "distribution", missing)
    with pytest.raises(UsageError) as error:
        data.build(data_cfg(name="digits"), seed=0).splits()
    assert str(error.value) == (
        "data.name=digits reads the digits scikit-learn's wheel bundles; install it: make install"
    )
