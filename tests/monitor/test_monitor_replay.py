"""The per-step non-finite check and its replay (template/monitor/nonfinite.py, replay.py): a step checks only
its loss (and, clipping by norm, the gradients' norm); a failed step is replayed from the state it started
with to name the layer — in the step itself on a CPU, at the next logging step or the epoch's end on an
accelerator, whose path `OnDevice` takes here on a CPU. tests/monitor/test_monitor_failures.py holds the
messages the monitor gave before the check changed; these hold the cases it did not test."""

import logging
import math

import pytest
import torch
from lightning.pytorch import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from template.monitor import NonFiniteError, VarianceMonitor
from template.monitor.callback import monitored_layers
from template.monitor.replay import Kept, replay, start
from tests.helpers.monitor_nets import Classifier, PlainCNN, loader, plain_mlp, trainer


class OnDevice(VarianceMonitor):
    """The monitor as it runs on an accelerator: the check is a record on the device, read later."""

    checks_in_step = staticmethod(lambda device: False)


MONITORS = {"cpu": VarianceMonitor, "device": OnDevice}


class Poison(Callback):
    """Before the monitor, as step `at_step` starts: `value` into one weight of `layer` (or, with `bias`,
    into channel 0's bias)."""

    def __init__(self, layer: str, at_step: int, value: float = math.nan, bias: bool = False):
        self.layer, self.at_step, self.value, self.bias = layer, at_step, value, bias

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at_step:
            module = pl_module.model.get_submodule(self.layer)
            with torch.no_grad():
                (module.bias[0:1] if self.bias else module.weight.view(-1)[0:1]).fill_(self.value)


def _fit(monitor, *callbacks, module=None, batches=8, **options):
    torch.manual_seed(0)
    module = module or Classifier(PlainCNN(5, 8, "kaiming"))
    trainer(batches, callbacks=[*callbacks, monitor], **options).fit(
        module, loader(8 * batches, (3, 8, 8), 8)
    )
    return module


@pytest.mark.parametrize("where", MONITORS)
def test_a_nan_weight_is_named_from_the_weights_the_step_started_with(where):
    """On a device the record is read at step 5, when every weight of features.0-2 is NaN after step 3's
    update: only the weights kept from step 3's start name features.2."""
    monitor = MONITORS[where](every_n_steps=5)
    with pytest.raises(NonFiniteError, match=r"^non-finite activation at step 3 in layer features.2$"):
        _fit(monitor, Poison("features.2", at_step=3))


def test_on_a_device_a_failure_with_no_logging_step_after_it_is_named_at_the_epochs_end():
    with pytest.raises(NonFiniteError, match=r"^non-finite activation at step 3 in layer features.4$"):
        _fit(OnDevice(every_n_steps=100), Poison("features.4", at_step=3))


class Flaky(nn.Module):
    """NaN out where a random draw of this step says so: only a replay with the step's own random
    numbers fails where the step failed."""

    def forward(self, x):
        return x * math.nan if float(torch.rand(())) < 0.2 else x


@pytest.mark.parametrize("where", MONITORS)
def test_the_replay_draws_the_random_numbers_the_step_drew(where):
    net = PlainCNN(5, 8, "kaiming")
    net.features.insert(4, Flaky())  # after features.2's ReLU: features.4 is the first NaN output
    monitor = MONITORS[where](every_n_steps=100)
    with pytest.raises(NonFiniteError, match=r"^non-finite activation at step \d+ in layer features.5$"):
        _fit(monitor, module=Classifier(net), batches=16)


class Backfire(Classifier):
    """On a batch whose first value is `MARK`, the gradient reaching `layer`'s output becomes infinite: a
    backward that fails where the forward and the loss were finite. The batch says when, so a replay
    of it, at any step, fails the same way."""

    MARK = 7.0

    def __init__(self, model, layer: str):
        super().__init__(model)
        self.layer = layer

    def training_step(self, batch, batch_idx):
        if float(batch[0].flatten()[0]) != self.MARK:
            return super().training_step(batch, batch_idx)

        def infinite_gradient(module, inputs, output):
            output.register_hook(lambda grad: grad * math.inf)

        handle = self.model.get_submodule(self.layer).register_forward_hook(infinite_gradient)
        try:
            return super().training_step(batch, batch_idx)
        finally:
            handle.remove()


def _fit_backfire(monitor, **options):
    """Step 2's batch backfires at features.4."""
    torch.manual_seed(0)
    data = loader(64, (3, 8, 8), 8)
    data.dataset.tensors[0][16].view(-1)[0] = Backfire.MARK  # the first value of batch 2
    module = Backfire(PlainCNN(5, 8, "kaiming"), "features.4")
    trainer(8, callbacks=[monitor], **options).fit(module, data)


def test_an_infinite_gradient_shows_as_the_broken_weights_activation_a_step_later():
    """Without clipping nothing computes the gradients' norm: step 2's update breaks every weight below
    features.4, and step 3's replay names the first of them — as the per-step probe did."""
    with pytest.raises(NonFiniteError, match=r"^non-finite activation at step 3 in layer features.0$"):
        _fit_backfire(VarianceMonitor(every_n_steps=5))


@pytest.mark.parametrize("where", MONITORS)
def test_clipping_by_norm_names_the_gradient_at_its_own_step_and_layer(where):
    with pytest.raises(NonFiniteError, match=r"^non-finite gradient at step 2 in layer features.4$"):
        _fit_backfire(MONITORS[where](every_n_steps=5), gradient_clip_val=1.0)


def test_a_bf16_overflow_is_named_at_its_layer_under_autocast():
    """3.397e38 is finite in float32 and infinite in bfloat16 (whose largest value is 3.39e38): only a
    replay under the step's autocast overflows where the step did, in the first layer; in float32 the
    next layer would be the first to overflow."""
    net = plain_mlp(3, 8, "kaiming")
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].weight[0, 0] = 3.397e38
    inputs = torch.rand(64, 8, generator=torch.Generator().manual_seed(0)) - 0.5  # |x| < 1: finite in fp32
    data = DataLoader(TensorDataset(inputs, torch.randint(0, 10, (64,))), batch_size=8)
    monitor = VarianceMonitor(every_n_steps=5)
    with pytest.raises(NonFiniteError, match=r"^non-finite activation at step 0 in layer 0$"):
        trainer(8, callbacks=[monitor], precision="bf16-mixed").fit(Classifier(net), data)


def test_an_infinity_a_relu_removes_is_caught_at_the_next_logging_step():
    """The case the check gives up: −inf in one channel's bias, which the ReLU turns into 0, so loss and
    gradients stay finite. The logging step's statistics of that layer are not finite."""
    with pytest.raises(NonFiniteError, match=r"^non-finite activation at step 5 in layer features.2$"):
        _fit(VarianceMonitor(every_n_steps=5), Poison("features.2", at_step=1, value=-math.inf, bias=True))


def test_on_a_device_warn_warns_once_and_trains_on(caplog):
    with caplog.at_level(logging.WARNING, logger="template.monitor"):
        _fit(OnDevice(every_n_steps=2, on_nonfinite="warn"), Poison("features.0", at_step=1))
    messages = [r.getMessage() for r in caplog.records if "non-finite" in r.getMessage()]
    assert messages == [
        "non-finite activation at step 1 in layer features.0 (stats.on_nonfinite=warn: training goes on)"
    ]


class Normed(nn.Module):
    """A conv, batch norm (running statistics: buffers) and dropout (random numbers)."""

    def __init__(self):
        super().__init__()
        self.conv, self.norm = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.drop, self.classifier = nn.Dropout(0.5), nn.Linear(8, 10)

    def forward(self, x):
        return self.classifier(self.drop(self.norm(self.conv(x)).relu().mean(dim=(2, 3))))


def test_a_replay_leaves_the_weights_buffers_gradients_and_random_numbers_as_they_were():
    torch.manual_seed(0)
    module = Classifier(Normed())
    module.trainer = trainer(1)
    batch = next(iter(loader(8, (3, 8, 8), 8)))
    module.training_step(batch, 0).backward()
    state = {k: v.clone() for k, v in module.state_dict().items()}
    grads = [p.grad.clone() for p in module.parameters()]
    rng = torch.get_rng_state()
    layers = [m for _, m in monitored_layers(module.model, ("Conv2d", "Linear"))]
    assert replay(module.trainer, module, layers, start(0, 0, batch, torch.device("cpu")), None) is None
    assert all(torch.equal(v, state[k]) for k, v in module.state_dict().items())
    assert all(torch.equal(p.grad, g) for p, g in zip(module.parameters(), grads, strict=True))
    assert torch.equal(torch.get_rng_state(), rng)


def test_kept_holds_the_first_failing_steps_tensors_in_any_layout():
    """A channels_last weight, a scalar, an integer buffer: each step's start is copied until the flag
    says a step failed, then held; a batch of a new shape replaces the kept one only while none has."""
    weight = torch.randn(4, 3, 2, 2).to(memory_format=torch.channels_last)
    scalar, counter = torch.tensor(3.0), torch.tensor(5)
    kept = Kept([weight, scalar, counter])
    ok, failed = torch.tensor(False), torch.tensor(True)
    kept.keep(ok, [torch.ones(2)], fresh=True)
    with torch.no_grad():
        weight.add_(1), scalar.add_(1), counter.add_(1)
    kept.keep(ok, [torch.full((2,), 2.0)], fresh=False)  # the failing step starts here
    started = weight.clone(), scalar.clone(), counter.clone()
    with torch.no_grad():
        weight.add_(1), scalar.add_(1), counter.add_(1)
    kept.keep(failed, [torch.zeros(2)], fresh=False)  # held
    kept.keep(failed, [torch.zeros(3)], fresh=False)  # a new shape, after a failure: held
    (batch,) = kept.load()
    assert torch.equal(weight, started[0]) and weight.is_contiguous(memory_format=torch.channels_last)
    assert (scalar.item(), counter.item(), batch.tolist()) == (
        started[1].item(),
        started[2].item(),
        [2.0, 2.0],
    )
    kept.keep(ok, [torch.zeros(3)], fresh=False)  # a new shape, nothing failed: replaced
    assert kept.load()[0].tolist() == [0.0, 0.0, 0.0]
