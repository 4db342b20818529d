"""The progress bar reads the metrics it shows, and counts the batches done, as often as it redraws, and
always at an epoch's last batch and end and at the run's last step: the last logged training loss and
the last count are what it leaves on screen."""

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


@pytest.mark.parametrize("max_steps", [-1, 8], ids=["epochs", "stopped mid-epoch"])
def test_metrics_are_read_at_redraws_and_at_each_epochs_last_batch_and_end(reads, tmp_path, max_steps):
    bar = progress.ProgressBar()
    model = plain_mlp(2, 8, "kaiming", classes=3)
    module = Classifier(model, 3, {"name": "sgd", "lr": 0.01}, {"name": "none"})
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=EPOCHS, max_steps=max_steps, logger=False, callbacks=[bar],
        enable_checkpointing=False, enable_model_summary=False, log_every_n_steps=2,
        default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, loader(BATCHES * 4, (8,), batch_size=4, classes=3))
    # the first batch; then each epoch's last batch and its end (`is_last_batch` holds at both), or the
    # run's last step and the epoch's end after it
    last = BATCHES if max_steps < 0 else max_steps - BATCHES
    assert reads == [1, BATCHES, BATCHES, last, last], reads  # Lightning alone: every batch, 14 or 10
    shown = bar._metric_component._metrics  # what the bar displays
    assert shown["train/loss"] == pytest.approx(float(trainer.callback_metrics["train/loss"]))


@pytest.fixture
def counts(monkeypatch) -> list[int]:
    """Each count Rich's training task is given, under a clock that stands still."""
    seen = []
    original = RichProgressBar._update

    def counted(self, progress_bar_id, current, *args, **kwargs):
        if progress_bar_id is not None and progress_bar_id == self.train_progress_bar_id:
            seen.append(current)
        return original(self, progress_bar_id, current, *args, **kwargs)

    monkeypatch.setattr(RichProgressBar, "_update", counted)
    monkeypatch.setattr(progress.time, "monotonic", lambda: 100.0)
    return seen


@pytest.mark.parametrize("max_steps", [-1, 8], ids=["epochs", "stopped mid-epoch"])
def test_batches_are_counted_at_redraws_and_the_last_count_is_shown(counts, tmp_path, max_steps):
    bar = progress.ProgressBar()
    model = plain_mlp(2, 8, "kaiming", classes=3)
    module = Classifier(model, 3, {"name": "sgd", "lr": 0.01}, {"name": "none"})
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=EPOCHS, max_steps=max_steps, logger=False, callbacks=[bar],
        enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, loader(BATCHES * 4, (8,), batch_size=4, classes=3))
    counted = [c for c in counts if c > 0]  # 0: the task's reset at each epoch's start
    # the first batch (the clock never moves again), then each epoch's last batch, or the run's last step
    # (Lightning alone: every batch, 12 or 8 counts)
    assert counted == [1, BATCHES, BATCHES if max_steps < 0 else max_steps - BATCHES], counts
    task = bar.progress.tasks[bar.train_progress_bar_id]
    assert task.completed == (BATCHES if max_steps < 0 else max_steps - BATCHES)
