"""The progress bar reads the metrics it shows as often as it redraws, and always at an epoch's last
batch and end: the last logged training loss is what it leaves on screen."""

import lightning as L
import pytest
from lightning.pytorch.callbacks import RichProgressBar

from template.module import Classifier
from template.run import progress
from tests.helpers.monitor_nets import loader, plain_mlp

EPOCHS, BATCHES = 2, 6


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """The batch index at each read of the metrics (Lightning's own `get_metrics`), under a clock that
    stands still: no redraw ever falls due after the first read."""
    seen = []
    original = RichProgressBar.get_metrics

    def counted(self, trainer, pl_module):
        seen.append(trainer.fit_loop.epoch_loop.batch_progress.current.ready)
        return original(self, trainer, pl_module)

    monkeypatch.setattr(RichProgressBar, "get_metrics", counted)
    monkeypatch.setattr(progress.time, "monotonic", lambda: 100.0)
    return seen


def test_metrics_are_read_at_redraws_and_at_each_epochs_last_batch_and_end(reads, tmp_path):
    bar = progress.ProgressBar()
    model = plain_mlp(2, 8, "kaiming", classes=3)
    module = Classifier(model, 3, {"name": "sgd", "lr": 0.01}, {"name": "none"})
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=EPOCHS, logger=False, callbacks=[bar], enable_checkpointing=False,
        enable_model_summary=False, log_every_n_steps=2, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, loader(BATCHES * 4, (8,), batch_size=4, classes=3))
    # the first batch; then each epoch's last batch and its end (`is_last_batch` holds at both)
    assert reads == [1, BATCHES, BATCHES, BATCHES, BATCHES], reads  # Lightning alone: every batch, 14
    shown = bar._metric_component._metrics  # what the bar displays
    assert shown["train/loss"] == pytest.approx(float(trainer.callback_metrics["train/loss"]))
