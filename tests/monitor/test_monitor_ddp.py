"""Under DDP the statistics are those of the global batch: two real processes (gloo on CPU, Lightning's
ddp_spawn) must report what one process reports on the same samples."""

import csv
import json

import pytest
import torch
from lightning.pytorch import Callback
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, DistributedSampler

from template.monitor import VarianceMonitor
from template.monitor.callback import LOGGED_KEYS
from tests.helpers.monitor_nets import Classifier, PlainCNN, loader, trainer

SAMPLES, PER_DEVICE = 64, 8


class DumpAtInit(Callback):
    """ddp_spawn runs fit in child processes, so rank 0 writes the monitor's `at_init` to a file."""

    def __init__(self, monitor: VarianceMonitor, path):
        self.monitor, self.path = monitor, path

    def on_fit_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            self.path.write_text(json.dumps(self.monitor.at_init))


class Sharded(Classifier):
    """Rank r takes samples r, r + world, ... in order, so the ranks' batches together are exactly the
    single process's batch. (Lightning's own distributed sampler always shuffles a training set.)"""

    def train_dataloader(self):
        data = loader(SAMPLES, (3, 8, 8), PER_DEVICE).dataset
        world, rank = self.trainer.world_size, self.trainer.global_rank
        sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=False)
        return DataLoader(data, batch_size=PER_DEVICE * 2 // world, sampler=sampler)


def _run(folder, devices: int) -> tuple[dict, dict[tuple[str, int], float]]:
    torch.manual_seed(0)
    module = Sharded(PlainCNN(4, 8, "pytorch_default"))
    monitor = VarianceMonitor(every_n_steps=2)
    callbacks = [monitor, DumpAtInit(monitor, folder / "at_init.json")]
    strategy = {"strategy": "ddp_spawn"} if devices > 1 else {}
    logger = CSVLogger(folder, name="csv", version=0)
    trainer(3, logger, callbacks, devices=devices, use_distributed_sampler=False, **strategy).fit(module)
    with open(folder / "csv" / "version_0" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    scalars = {
        (key, int(row["step"])): float(v) for row in rows for key, v in row.items() if v and "/" in key
    }
    return json.loads((folder / "at_init.json").read_text()), scalars


@pytest.mark.slow
def test_two_processes_report_the_statistics_of_one_process_on_the_same_samples(tmp_path):
    one_at_init, one = _run(tmp_path / "one", devices=1)
    two_at_init, two = _run(tmp_path / "two", devices=2)

    assert one_at_init["batch_size"] == two_at_init["batch_size"] == 2 * PER_DEVICE
    assert two_at_init["first_failure"] == one_at_init["first_failure"]
    for a, b in zip(two_at_init["layers"], one_at_init["layers"], strict=True):
        assert (a["name"], a["fan_in"], a["fan_out"]) == (b["name"], b["fan_in"], b["fan_out"])
        for key in LOGGED_KEYS:  # correlations and channel moments too: their sums reduce across ranks
            assert (a[key] is None) == (b[key] is None), (a["name"], key)
            if a[key] is not None:
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-12), (a["name"], key)
    assert set(two) == set(one) and {step for _, step in one} == {0, 2}  # step 2: after two DDP updates
    assert {key.split("/")[0] for key, _ in one} == set(LOGGED_KEYS)
    for key, value in one.items():
        assert two[key] == pytest.approx(value, rel=1e-4), key
