"""The monitor must not make the host wait for the device on steps that do not log.

Every way a tensor reaches the host (`.item()`, `.tolist()`, `.cpu()`, `.numpy()`, `.to()`, and the
implicit `bool()`/`float()`/`int()`/index conversions) is patched to record calls made from the
monitor's own code, directly or through what it calls, together with the step they happened in.
On a CPU run these calls cost nothing, but each would be a sync on an accelerator. The mean-field
theory (`propagation`, `meanfield`) is left out of that count — it computes on the host, in float64
tensors of its own, and a CPU run cannot tell those from the training device's — and is held by the
second test instead: on the meta device, where reading any value fails, it makes exactly one transfer.
"""

import math
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback
from monitor_nets import Classifier, PlainCNN, loader, trainer
from torch import nn

import template.monitor
from template import models
from template.monitor import VarianceMonitor
from template.monitor.propagation import Propagation

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


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_the_theory_reads_the_models_parameters_in_one_transfer(monkeypatch, norm):
    """propagation reads batch norm's weights and biases (norm=batch) and Fixup's scalar biases and
    multipliers (norm=none), once per logging step. The model moves to the meta device, where any read
    of a value fails; the one stacked `.cpu()` is answered with what the same model on the CPU
    transferred, and the theory must come out the same."""
    model = models.build("resnet", depth=20, width=4, norm=norm)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    variances = {name: (0.1, 0.0) for name in names}
    on_cpu = Propagation(model, names)
    expected = on_cpu.run((3, 8, 8), 1.0, 0.5, variances, 1.0, batch=4)
    host_values = torch.tensor(list(on_cpu._host.values()), dtype=torch.float64)
    transfers = []
    original = torch.Tensor.cpu

    def cpu(self, *args, **kwargs):
        if self.is_meta:
            transfers.append(self.shape)
            return host_values.clone()
        return original(self, *args, **kwargs)

    on_meta = Propagation(model.to("meta"), names)
    monkeypatch.setattr(torch.Tensor, "cpu", cpu)
    result = on_meta.run((3, 8, 8), 1.0, 0.5, variances, 1.0, batch=4)
    assert result.notes == [] and all(math.isfinite(v) for v in result.act_var)
    assert result == expected
    parameters = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) * 2 if norm == "batch" else 0
    parameters += sum(p.numel() == 1 for p in model.parameters())  # Fixup's scalars
    assert parameters > 0 and transfers == [torch.Size([parameters])]
