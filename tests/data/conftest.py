"""Fixtures of the data tests: fake CIFAR files that torchvision accepts, and a DataConfig to build on."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import NamedTuple

import pytest
from omegaconf import OmegaConf
from torchvision import datasets

from template.schema import DataConfig
from tests.helpers.fake_cifar import LAYOUT, write_fake_cifar
from tests.helpers.fake_digits import write_fake_mnist, write_fake_svhn

CLASSES = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    """`fake_cifar(name, n_train, n_test)` writes small CIFAR files under tmp_path/"data" and points
    torchvision's md5 table at them: the stand-in for the real files, whose sums torchvision hard-codes.
    Returns the root (by default tmp_path/"data", where `data_cfg` points)."""

    def write(name: str = "cifar10", n_train: int = 100, n_test: int = 20, root=None):
        root = root or tmp_path / "data"
        md5s = write_fake_cifar(root, name, n_train=n_train, n_test=n_test)
        layout, dataset = LAYOUT[name], CLASSES[name]
        monkeypatch.setattr(dataset, "train_list", [[file, md5s[file]] for file in layout["train"]])
        monkeypatch.setattr(dataset, "test_list", [[file, md5s[file]] for file in layout["test"]])
        monkeypatch.setattr(dataset, "meta", {**dataset.meta, "md5": md5s[layout["meta"][0]]})
        return root

    return write


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """`fake_mnist(name, n_train, n_test)`: small MNIST or Fashion-MNIST archives where torchvision
    looks (tmp_path/"data"/<Class>/raw), with torchvision's md5 table pointed at them; returns raw."""

    def write(name: str = "mnist", n_train: int = 60, n_test: int = 20, root=None):
        dataset = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[name]
        raw = Path(root or tmp_path / "data") / dataset.__name__ / "raw"
        md5s = write_fake_mnist(raw, n_train, n_test)
        monkeypatch.setattr(dataset, "resources", [(file, md5s[file]) for file, _ in dataset.resources])
        return raw

    return write


@pytest.fixture
def fake_svhn(tmp_path, monkeypatch):
    """`fake_svhn(n_train, n_test)`: small SVHN files in tmp_path/"data", torchvision's table pointed at
    them; returns the root."""

    def write(n_train: int = 60, n_test: int = 20, root=None):
        root = Path(root or tmp_path / "data")
        md5s = write_fake_svhn(root, n_train, n_test)
        table = {
            split: [url, file, md5s.get(file, md5)]
            for split, (url, file, md5) in datasets.SVHN.split_list.items()
        }
        monkeypatch.setattr(datasets.SVHN, "split_list", table)
        return root

    return write


@pytest.fixture
def data_cfg(tmp_path):
    """`data_cfg(**overrides)`: a DataConfig as the config loader makes it, rooted in tmp_path."""

    def make(**overrides):
        return OmegaConf.structured(
            DataConfig(**{"root": str(tmp_path / "data"), "num_workers": 0, **overrides})
        )

    return make


class Served(NamedTuple):
    folder: Path  # what the server serves
    url: str
    requests: list[str]  # "GET /path", ... in the order asked


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def log_request(self, *args):
        self.server.requests.append(f"{self.command} {self.path}")


@pytest.fixture
def http_folder(tmp_path):
    """A loopback HTTP server on a free port serving a folder, for the download path."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=folder)
    )
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Served(folder, f"http://127.0.0.1:{server.server_address[1]}", server.requests)
    server.shutdown()
    server.server_close()
