"""The progress bar: Lightning's Rich bar, redrawn at most twice a second, its metrics read as often.

Left to itself Lightning redraws the bar from a thread that wakes 100 times a second: each wake takes
the GIL from the training loop, and on two cores the thread's CPU is taken from torch's two threads.
Each redraw renders the bar and its metrics in Python (0.7 ms measured on a CPU): at 4 a second it cost
0.3–0.5 % of a 2-core step's time (`make bench`), at 2 half that. And after every batch Lightning reads
the metrics the bar shows — the logger's version, every `prog_bar` metric converted with `.item()` —
0.18 ms of Python a step (a tiny model's steps under cProfile, 2026-12-05), though they change only on
the steps the logger writes and the bar shows them at most twice a second; and it updates Rich's task
(its count and speed samples), 0.15 ms a step in the bench's loop. So both happen as often as the bar
redraws, and always on an epoch's last batch, at its end, on the run's last step and outside training:
the last count and value logged are the ones left on screen.
"""

from __future__ import annotations

import math
import time

from lightning.pytorch.callbacks import Callback, RichProgressBar
from omegaconf import DictConfig

REDRAWS_PER_SECOND = 2  # each redraw is ~0.7 ms of Python (CPU, 2026-12-04)


class ProgressBar(RichProgressBar):
    def __init__(self, redraws_per_second: int = REDRAWS_PER_SECOND):
        super().__init__(refresh_rate=redraws_per_second)  # Rich's redraws per second
        self._metrics: dict | None = None
        self._read_at = self._counted_at = -math.inf

    def get_metrics(self, trainer, pl_module) -> dict:
        if self._due("_read_at", trainer) or self._metrics is None or not trainer.training:
            self._metrics = super().get_metrics(trainer, pl_module)
        return self._metrics

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self._due("_counted_at", trainer):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _due(self, last_time: str, trainer) -> bool:
        """Whether a redraw's interval has passed since the attribute `last_time` (then set to now), or the
        bar's last chance has come: an epoch's last batch, a stop, the run's last step."""
        now = time.monotonic()
        last = trainer.is_last_batch or trainer.should_stop or 0 < trainer.max_steps <= trainer.global_step
        if last or now - getattr(self, last_time) >= 1 / self.refresh_rate:
            setattr(self, last_time, now)
            return True
        return False


def progress_bar(cfg: DictConfig) -> list[Callback]:
    """The bar, or none where `trainer.enable_progress_bar=false` (Lightning then refuses one)."""
    if not cfg.trainer.get("enable_progress_bar", True):
        return []
    return [ProgressBar()]
