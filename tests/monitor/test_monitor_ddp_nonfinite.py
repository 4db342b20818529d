"""A DDP rank that goes non-finite alone stops every rank, with one message: two real processes (gloo on
CPU, Lightning's ddp_spawn), rank 1's weight poisoned at step 3. On a CPU the ranks agree before step
3's update; on the accelerator's path (`OnDevice`) at the logging step after it, replaying step 3 on
rank 1 from the weights it started with."""

import math

import pytest
import torch
from lightning.pytorch import Callback

from template.monitor import VarianceMonitor
from tests.helpers.monitor_nets import Classifier, PlainCNN, loader, trainer


class OnDevice(VarianceMonitor):
    checks_in_step = staticmethod(lambda device: False)


class Recording:
    """Writes each rank's NonFiniteError message to `folder/rank<r>.txt` before it propagates: ddp_spawn
    hands the parent only the first failing process's error. Mixed into a monitor."""

    def __init__(self, folder, **options):
        super().__init__(**options)
        self.folder = folder

    def _recorded(self, hook, trainer, *args):
        try:
            hook(trainer, *args)
        except RuntimeError as error:
            (self.folder / f"rank{trainer.global_rank}.txt").write_text(str(error))
            raise

    def on_before_optimizer_step(self, trainer, *args):
        self._recorded(super().on_before_optimizer_step, trainer, *args)

    def on_train_batch_end(self, trainer, *args):
        self._recorded(super().on_train_batch_end, trainer, *args)

    def on_train_epoch_end(self, trainer, *args):
        self._recorded(super().on_train_epoch_end, trainer, *args)


class RecordingOnCPU(Recording, VarianceMonitor):
    pass


class RecordingOnDevice(Recording, OnDevice):
    pass


RECORDING = {"cpu": RecordingOnCPU, "device": RecordingOnDevice}


class PoisonRank(Callback):
    """Before the monitor: a NaN into one weight of features.2 on rank 1 as step 3 starts."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_rank == 1 and trainer.global_step == 3:
            with torch.no_grad():
                pl_module.model.features[2].weight.view(-1)[0] = math.nan


@pytest.mark.slow
@pytest.mark.parametrize("where", RECORDING)
def test_a_rank_that_fails_alone_stops_both_with_the_same_message(tmp_path, where):
    torch.manual_seed(0)
    monitor = RECORDING[where](tmp_path, every_n_steps=5)
    fit = trainer(8, callbacks=[PoisonRank(), monitor], devices=2, strategy="ddp_spawn")
    with pytest.raises(Exception, match="non-finite activation at step 3 in layer features.2"):
        fit.fit(Classifier(PlainCNN(5, 8, "kaiming")), loader(128, (3, 8, 8), 8))
    messages = {path.name: path.read_text() for path in tmp_path.glob("rank*.txt")}
    expected = "non-finite activation at step 3 in layer features.2"
    assert messages == {"rank0.txt": expected, "rank1.txt": expected}
