"""The monitor must not make the host wait for the device on steps that do not log.

Every way a tensor reaches the host (`.item()`, `.tolist()`, `.cpu()`, `.numpy()`, `.to()`, and the
implicit `bool()`/`float()`/`int()`/index conversions) is patched to record calls made from the
monitor's own code, directly or through what it calls, together with the step they happened in.
On a CPU run these calls cost nothing, but each would be a sync on an accelerator. The mean-field
theory (`propagation`, `meanfield`) is left out: it computes on the host, in float64 tensors it builds
from the numbers that the one copy brought back, and never touches a tensor of the training device.
"""

import sys
from collections import Counter
from pathlib import Path

import torch
from lightning.pytorch import Callback
from monitor_nets import Classifier, PlainCNN, loader, trainer

import template.monitor
from template.monitor import VarianceMonitor

MONITOR_DIR = str(Path(template.monitor.__file__).parent)
HOST_MATH = tuple(f"{MONITOR_DIR}/{name}.py" for name in ("propagation", "meanfield"))
HOST_TRANSFERS = ["item", "tolist", "cpu", "numpy", "to", "__bool__", "__float__", "__int__", "__index__"]


class StepClock(Callback):
    """Goes first in the callback list: everything until the next batch starts belongs to this step."""

    now = "setup"

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        StepClock.now = trainer.global_step

    def on_train_epoch_end(self, trainer, pl_module):
        StepClock.now = "epoch end"


def _from_monitor() -> bool:
    frame, found = sys._getframe(2), False
    while frame is not None:
        if frame.f_code.co_filename in HOST_MATH:
            return False
        found = found or frame.f_code.co_filename.startswith(MONITOR_DIR)
        frame = frame.f_back
    return found


def _dtype_only(args, kwargs) -> bool:
    """`.to(torch.float64)` casts on the device; only a `.to` that names a device can move data."""
    return "device" not in kwargs and all(isinstance(a, torch.dtype) for a in args)


def test_no_host_transfer_on_steps_that_do_not_log_and_one_copy_on_steps_that_do(monkeypatch):
    calls: Counter = Counter()
    for name in HOST_TRANSFERS:
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            if _from_monitor() and not (_name == "to" and _dtype_only(args, kwargs)):
                calls[StepClock.now, _name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)

    torch.manual_seed(0)
    monitor = VarianceMonitor(every_n_steps=3)
    trainer(7, callbacks=[StepClock(), monitor], accumulate_grad_batches=2).fit(
        Classifier(PlainCNN(4, 8, "kaiming")), loader(8 * 16, (3, 8, 8), 8)
    )
    monkeypatch.undo()

    assert monitor.at_init is not None
    steps_with_calls = {step for step, _ in calls if isinstance(step, int)}
    assert steps_with_calls == {0, 3, 6}, calls
    for step in (0, 3, 6):
        assert {name: n for (s, name), n in calls.items() if s == step} == {"cpu": 1, "numpy": 1}
