"""The monitor must not make the host wait for the device on steps that do not log.

On a CPU run a copy to the host costs nothing, so the test tracks where each value lives instead: a
torch function mode follows every tensor the training touches and marks as *host* only what the host
made itself — the results of a transfer (`.cpu()`, `.tolist()`, `.numpy()`, ...), of a factory called
without a `device`, and of operations whose tensor inputs are all host tensors. Everything else, the
model's parameters and buffers, the batch, the gradients autograd makes and anything computed from them,
is a *device* tensor. Reading a value of a device tensor (`.item()`, `.tolist()`, `.cpu()`, `.numpy()`,
`.to(device)`, the implicit `bool()`/`float()`/`int()`/index conversions, or writing it into a host
tensor with `copy_`/`[...] =`) from the monitor's code, any of its files, is a host transfer: on an
accelerator, a sync. The mean-field theory (`propagation`, `meanfield`) is held to the same rule: its
float64 maps are host tensors, so it may compute with them freely, but a parameter it reads from the
model is a device tensor.

The monitor's per-step non-finite check reads the loss on the host where that costs nothing, on a CPU;
elsewhere it keeps a record on the device (template/monitor/nonfinite.py). `OnDevice` takes that path
here, on a CPU, so the test sees what an accelerator run does.
"""

import math
import sys
import weakref
from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

import template.monitor
import template.theory
from template import models
from template.monitor import VarianceMonitor
from template.theory import meanfield
from template.theory.propagation import Propagation
from tests.helpers.monitor_nets import Classifier, PlainCNN, loader, trainer

# the monitor and the theory it runs on every logging step (propagation)
MONITOR_DIRS = tuple(str(Path(package.__file__).parent) for package in (template.monitor, template.theory))
READS = {"item", "tolist", "cpu", "numpy", "__array__", "__bool__", "__float__", "__int__", "__index__"}
WRITES = {"copy_", "__setitem__"}  # into a host tensor: a copy from the device when the source is one


class OnDevice(VarianceMonitor):
    """The monitor as it runs on an accelerator: the non-finite check stays on the device."""

    checks_in_step = staticmethod(lambda device: False)


class StepClock(Callback):
    """Goes first in the callback list: everything until the next batch starts belongs to this step."""

    now = "setup"

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        StepClock.now = trainer.global_step

    def on_train_epoch_end(self, trainer, pl_module):
        StepClock.now = "epoch end"


def _monitor_file() -> str | None:
    """The monitor's (or theory's) file nearest on the stack, by name; None outside them."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(MONITOR_DIRS):
            return Path(frame.f_code.co_filename).name
        frame = frame.f_back
    return None


def _names_a_device(args, kwargs) -> bool:
    """`.to(torch.float64)` casts where the tensor is; a `.to` that names a device (or another tensor's)
    can move data."""
    return "device" in kwargs or any(not isinstance(a, torch.dtype) for a in args)


class HostTransfers(TorchFunctionMode):
    """Counts, per `StepClock` step, the monitor's reads of device tensors' values."""

    def __init__(self):
        super().__init__()
        self.calls: Counter = Counter()
        self.sources: Counter = Counter()  # (step, name, the monitor's file that read)
        self._host: dict[int, object] = {}  # id → weak reference, so that a reused id is not host

    def mark_host(self, value) -> None:
        for t in tree_leaves(value):
            if isinstance(t, torch.Tensor):
                self._host[id(t)] = weakref.ref(t)

    def is_host(self, t: torch.Tensor) -> bool:
        ref = self._host.get(id(t))
        return ref is not None and ref() is t

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        on_device = [t for t in tensors if not self.is_host(t)]
        moves = name in READS or (name == "to" and _names_a_device(args[1:], kwargs))
        written = name in WRITES and self.is_host(args[0]) and any(t is not args[0] for t in on_device)
        source = _monitor_file() if moves and on_device or written else None
        if source is not None:
            self.calls[StepClock.now, name] += 1
            self.sources[StepClock.now, name, source] += 1
        out = func(*args, **kwargs)
        if name in READS or not on_device and (tensors or "device" not in kwargs):
            self.mark_host(out)
        return out


def _host_from_numpy(transfers: HostTransfers, array, _from_numpy=torch.from_numpy):
    out = _from_numpy(array)  # not a torch function: the mode cannot see it
    transfers.mark_host(out)
    return out


@pytest.mark.parametrize(
    "model",
    [
        lambda: PlainCNN(4, 8, "kaiming"),
        lambda: models.build("resnet", depth=20, width=4, norm="batch"),
        lambda: models.build("resnet", depth=20, width=4, norm="none"),  # Fixup's scalars
    ],
    ids=["plain", "batch_norm", "fixup"],
)
def test_no_host_transfer_on_steps_that_do_not_log_and_one_copy_on_steps_that_do(monkeypatch, model):
    """Allowed per logging step: the accumulator's one `.cpu()` of its sums (and of the non-finite check's
    record), and the theory's one `.cpu()` of the model's parameter statistics (each weight layer's
    spread of unit norms; batch norm's weights and biases, Fixup's scalars); nothing on the other steps,
    where the non-finite check looks at each micro-batch's loss and, clipping by norm, the gradients'."""
    transfers, monitor = _transfers(monkeypatch, model(), OnDevice(every_n_steps=3))
    calls = transfers.calls

    assert monitor.at_init is not None
    assert all(math.isfinite(layer["act_var_theory"] or math.nan) for layer in monitor.at_init["layers"])
    steps_with_calls = {step for step, _ in calls if isinstance(step, int)}
    assert steps_with_calls == {0, 3, 6}, calls
    for step in (0, 3, 6):
        copies = {name: n for (s, name), n in calls.items() if s == step}
        assert copies == {"cpu": 2}, (step, copies)


def test_on_a_cpu_the_check_reads_each_loss_and_gradient_norm_on_the_host(monkeypatch):
    """On a CPU a value is on the host already: the check reads each micro-batch's loss (two a step
    here) and the clipped gradients' norm, one `item` each, and the monitor nothing else between its
    logging steps. On those, the statistics also read their float32 sums to check them before they
    trust them (`float`, `bool`: accumulator.py, rows.py), which on a CPU costs nothing either."""
    transfers, _ = _transfers(monkeypatch, PlainCNN(4, 8, "kaiming"), VarianceMonitor(every_n_steps=3))
    statistics = ("accumulator.py", "rows.py")
    for step in range(7):
        reads = Counter()
        for (s, name, source), n in transfers.sources.items():
            if s == step:
                reads["statistics" if source in statistics and name != "cpu" else name] += n
        checks = reads.pop("statistics", 0)
        assert reads == ({"cpu": 2} if step % 3 == 0 else {}) | {"item": 3}, (step, reads)
        assert (checks > 0) == (step % 3 == 0), (step, checks)


def _transfers(monkeypatch, model, monitor) -> tuple[HostTransfers, VarianceMonitor]:
    """The monitor's host transfers, per `StepClock` step, over 7 steps of 2 micro-batches each,
    clipping the gradients by norm."""
    for function in vars(meanfield).values():  # quadrature nodes cached before the mode could see them
        getattr(function, "cache_clear", lambda: None)()
    torch.manual_seed(0)
    transfers = HostTransfers()
    monkeypatch.setattr(torch, "from_numpy", partial(_host_from_numpy, transfers))
    with transfers:
        trainer(7, callbacks=[StepClock(), monitor], accumulate_grad_batches=2, gradient_clip_val=1.0).fit(
            Classifier(model), loader(8 * 16, (3, 8, 8), 8)
        )
    monkeypatch.undo()
    return transfers, monitor


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_the_theory_reads_the_models_parameters_in_one_transfer(monkeypatch, norm):
    """propagation reads batch norm's weights and biases (norm=batch), Fixup's scalar biases and
    multipliers (norm=none) and every weight layer's spread of unit norms and of squared biases, once per
    logging step. The model moves to the meta device, where any read
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
    for key, value in vars(expected).items():  # NaN where batch norm ends the correlation model
        np.testing.assert_equal(getattr(result, key), value, err_msg=key)
    parameters = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) * 2 if norm == "batch" else 0
    parameters += sum(p.numel() == 1 for p in model.parameters())  # Fixup's scalars
    weight_layers = [model.get_submodule(name) for name in names]
    parameters += len(weight_layers) + sum(m.bias is not None for m in weight_layers)  # the spreads
    assert parameters > 0 and transfers == [torch.Size([parameters])]
