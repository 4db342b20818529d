"""CIFAR through torchvision on small files in the real format: splits, loaders, and the one-line
errors for no network, no files and damaged files — without ever unpickling a file that failed its md5."""

import concurrent.futures
import hashlib
import pickle
import tarfile

import pytest
import torch
from torchvision import datasets

from template import data
from template.data import augment
from template.errors import UsageError
from tests.helpers.fake_cifar import read_split

CLOSED_PORT = "http://127.0.0.1:9/cifar.tar.gz"  # loopback, nothing listens: refused at once


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_splits_hold_the_files_images_with_a_fixed_validation_hold_out(fake_cifar, data_cfg, name, classes):
    fake_cifar(name, n_train=100, n_test=20)
    module = data.build(data_cfg(name=name, val_size=30), seed=0)
    module.prepare_data()
    module.setup("fit")
    splits = module.splits()
    assert module.num_classes == classes and module.image_shape == (3, 32, 32)
    assert [len(splits[split][1]) for split in ("train", "val", "test")] == [70, 30, 20]
    images, labels = read_split(name, "train", 100)
    held = torch.cat([splits["train"][0], splits["val"][0]])
    held_labels = torch.cat([splits["train"][1], splits["val"][1]])
    order = [next(i for i in range(100) if torch.equal(torch.from_numpy(images[i]), image)) for image in held]
    assert sorted(order) == list(range(100))  # a permutation of the file's images, channels first
    assert held_labels.tolist() == [labels[i] for i in order]
    test_images, test_labels = read_split(name, "test", 20)
    assert (
        torch.equal(splits["test"][0], torch.from_numpy(test_images))
        and splits["test"][1].tolist() == test_labels
    )
    other_seed = data.build(data_cfg(name=name, val_size=30), seed=7)
    assert torch.equal(other_seed.splits()["val"][0], splits["val"][0])  # the run's seed does not move it


def test_torch_loader_batches_and_sample_inputs(fake_cifar, data_cfg):
    fake_cifar("cifar10")
    module = data.build(data_cfg(val_size=20, batch_size=8), seed=0)
    module.prepare_data()
    inputs = module.sample_inputs(5)  # before setup, as an LSUV init needs it
    assert torch.equal(inputs, augment.normalize(module.splits()["train"][0][:5], module.mean, module.std))
    module.setup("fit")
    images, labels = next(iter(module.train_dataloader()))
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32 and labels.dtype == torch.int64
    val_images, _ = next(iter(module.val_dataloader()))
    assert torch.equal(val_images, augment.normalize(module.splits()["val"][0][:8], module.mean, module.std))
    assert len(module.test_dataloader().dataset) == 20


@pytest.mark.parametrize("name, title", [("cifar10", "CIFAR-10"), ("cifar100", "CIFAR-100")])
def test_failed_download_is_one_line_with_the_offline_alternative(
    data_cfg, monkeypatch, tmp_path, name, title
):
    monkeypatch.setattr(
        {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name], "url", CLOSED_PORT
    )
    module = data.build(data_cfg(name=name), seed=0)
    with pytest.raises(UsageError) as error:
        module.prepare_data()
    assert str(error.value) == (
        f"{title} could not be downloaded into {tmp_path / 'data'}/ (connection refused); "
        "to train offline: make train INIT=kaiming DATA=digits_cifar"
    )


def archive(fake_cifar, tmp_path, monkeypatch, folder, md5=None):
    """The fake files packed as torchvision's archive into `folder`; CIFAR10's archive md5 set to it."""
    source = fake_cifar("cifar10", root=tmp_path / "source")
    path = folder / datasets.CIFAR10.filename
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source / datasets.CIFAR10.base_folder, arcname=datasets.CIFAR10.base_folder)
    monkeypatch.setattr(datasets.CIFAR10, "tgz_md5", md5 or hashlib.md5(path.read_bytes()).hexdigest())


def serve_archive(fake_cifar, http_folder, tmp_path, monkeypatch, md5=None):
    """The archive on the loopback server, with CIFAR10's url pointing at it."""
    archive(fake_cifar, tmp_path, monkeypatch, http_folder.folder, md5)
    monkeypatch.setattr(datasets.CIFAR10, "url", f"{http_folder.url}/{datasets.CIFAR10.filename}")


def test_download_fetches_extracts_and_verifies(fake_cifar, http_folder, data_cfg, tmp_path, monkeypatch):
    serve_archive(fake_cifar, http_folder, tmp_path, monkeypatch)
    module = data.build(data_cfg(val_size=10), seed=0)
    module.prepare_data()
    module.setup("fit")
    assert [len(module.splits()[split][1]) for split in ("train", "val", "test")] == [90, 10, 20]
    assert (tmp_path / "data" / datasets.CIFAR10.filename).is_file()  # kept: a later run re-extracts from it


def test_processes_preparing_at_once_download_once(fake_cifar, http_folder, data_cfg, tmp_path, monkeypatch):
    """As torchrun's ranks do: four at once on one shared root; the first downloads, the rest wait for it
    and find the files. "Once" is measured against a lone download's requests (torchvision sends more
    than one per download: it first follows redirects)."""
    serve_archive(fake_cifar, http_folder, tmp_path, monkeypatch)
    data.build(data_cfg(root=str(tmp_path / "alone"), val_size=10), seed=0).prepare_data()
    one_download = list(http_folder.requests)
    http_folder.requests.clear()

    modules = [data.build(data_cfg(val_size=10), seed=0) for _ in range(4)]
    with concurrent.futures.ThreadPoolExecutor(len(modules)) as pool:
        list(pool.map(lambda module: module.prepare_data(), modules))
    assert http_folder.requests == one_download
    for module in modules:
        module.setup("fit")
        assert len(module.splits()["train"][1]) == 90


def test_an_archive_copied_into_the_root_is_unpacked_without_network(
    fake_cifar, data_cfg, tmp_path, monkeypatch
):
    (tmp_path / "data").mkdir()
    archive(fake_cifar, tmp_path, monkeypatch, tmp_path / "data")
    monkeypatch.setattr(datasets.CIFAR10, "url", CLOSED_PORT)
    module = data.build(data_cfg(val_size=10), seed=0)
    module.prepare_data()
    assert len(module.sample_inputs(1000)) == 90


def test_reading_before_prepare_data_names_the_missing_file(data_cfg, tmp_path):
    with pytest.raises(UsageError) as error:
        data.build(data_cfg(), seed=0).setup("fit")
    root = tmp_path / "data"
    assert str(error.value) == (
        f"CIFAR-10 is not in {root}/ ({root / 'cifar-10-batches-py' / 'data_batch_1'} is missing); "
        "run prepare_data first"
    )


@pytest.mark.parametrize(
    "path, reason",
    [
        (datasets.CIFAR10.filename, "the downloaded archive failed its checksum"),
        ("missing.tar.gz", "HTTP 404 File not found"),
    ],
)
def test_a_bad_download_says_why(fake_cifar, http_folder, data_cfg, tmp_path, monkeypatch, path, reason):
    serve_archive(fake_cifar, http_folder, tmp_path, monkeypatch, md5="0" * 32)
    monkeypatch.setattr(datasets.CIFAR10, "url", f"{http_folder.url}/{path}")
    with pytest.raises(UsageError) as error:
        data.build(data_cfg(), seed=0).prepare_data()
    assert str(error.value) == (
        f"CIFAR-10 could not be downloaded into {tmp_path / 'data'}/ ({reason}); "
        "to train offline: make train INIT=kaiming DATA=digits_cifar"
    )


def test_missing_files_without_download_is_one_line(data_cfg, tmp_path):
    module = data.build(data_cfg(download=False), seed=0)
    with pytest.raises(UsageError) as error:
        module.prepare_data()
    root = tmp_path / "data"
    assert str(error.value) == (
        f"CIFAR-10 is not in {root}/ ({root / 'cifar-10-batches-py' / 'data_batch_1'} is missing) and "
        f"data.download=false; set data.download=true to download it (or unpack a cifar-10-python.tar.gz "
        f"put in {root}/), or train offline: make train INIT=kaiming DATA=digits_cifar"
    )


class Trap:
    """Unpickling this creates `marker`: the proof that a file was loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("stage", ["prepare_data", "setup"])
def test_a_file_failing_its_md5_is_named_and_never_unpickled(fake_cifar, data_cfg, tmp_path, stage):
    root = fake_cifar("cifar10")
    damaged = root / "cifar-10-batches-py" / "data_batch_3"
    marker = tmp_path / "unpickled"
    damaged.write_bytes(pickle.dumps({"data": Trap(marker)}))
    module = data.build(data_cfg(), seed=0)
    with pytest.raises(UsageError) as error:
        getattr(module, stage)()
    assert str(error.value) == (
        f"{damaged} is corrupted or incomplete (its md5 is not CIFAR-10's); "
        "delete it and run again to fetch a fresh copy"
    )
    assert not marker.exists()
    pickle.loads(damaged.read_bytes())  # the trap works: loading the file would have tripped it
    assert marker.exists()


def test_a_validation_split_as_large_as_the_training_set_is_refused(fake_cifar, data_cfg):
    fake_cifar("cifar10", n_train=50)
    module = data.build(data_cfg(val_size=50), seed=0)
    module.prepare_data()
    with pytest.raises(UsageError, match=r"^data.val_size=50 must be smaller than the 50 training images$"):
        module.setup("fit")
