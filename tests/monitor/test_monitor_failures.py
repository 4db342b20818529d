"""Where a network breaks: the first layer out of the variance bounds, and non-finite values."""

import logging
import math

import numpy as np
import pytest
import torch

from template.monitor import NonFiniteError, VarianceMonitor
from tests.helpers.monitor_nets import Classifier, PlainCNN, loader, plain_mlp, trainer

# 30 square layers: He's setting, where Glorot halves the variance per layer and Kaiming keeps it. The
# CNN needs width: at finite width the variance drifts down by roughly exp(-5/width) per layer even
# under Kaiming (0.86 per layer at 32 channels, 0.93 at 64), and zero padding would add border losses.
NETS = {
    "mlp": (lambda scheme: plain_mlp(30, 256, scheme), (256,), 128),
    "cnn": (lambda scheme: PlainCNN(30, 64, scheme, padding="circular"), (3, 8, 8), 16),
}


def _at_init(net: str, scheme: str) -> dict:
    make, shape, batch = NETS[net]
    torch.manual_seed(0)
    monitor = VarianceMonitor(every_n_steps=100)
    trainer(1, callbacks=[monitor]).fit(Classifier(make(scheme)), loader(batch, shape, batch, seed=1))
    return monitor.at_init


@pytest.mark.parametrize("net", NETS)
def test_glorot_30_is_flagged_vanishing_where_the_theory_leaves_the_bound(net, caplog):
    with caplog.at_level(logging.WARNING, logger="template.monitor"):
        at_init = _at_init(net, "glorot")
    variances = np.array([layer["act_var"] for layer in at_init["layers"]])
    theory = np.array([layer["act_var_theory"] for layer in at_init["layers"]])
    below = np.flatnonzero(theory / theory[0] < 1e-2)
    failure = at_init["first_failure"]
    assert failure == {
        "layer": at_init["layers"][below[0]]["name"],
        "direction": "vanishing",
        "factor": pytest.approx(variances[below[0]] / variances[0]),
        "reason": "theory",
        "vs_theory": pytest.approx(variances[below[0]] / theory[below[0]]),
    }
    # Theory: 1/2 per layer, so the bound 1e-2 is crossed at the 8th layer (index 7); allow one either way
    assert abs(below[0] - math.ceil(math.log(1e-2) / math.log(0.5))) <= 1
    assert variances[-2] / variances[0] < 1e-7  # and it keeps vanishing
    assert f"layer {failure['layer']}: activation variance" in caplog.text and "vanishing" in caplog.text


def test_a_narrow_kaiming_net_far_below_its_first_layer_but_inside_the_band_is_not_flagged(caplog):
    """Width 8, 24 layers: one draw ends orders of magnitude below the first layer, as a broken init
    would, yet it is a typical draw at this width (Hanin & Rolnick 2018) and such nets train."""
    torch.manual_seed(3)
    monitor = VarianceMonitor(every_n_steps=100)
    net = plain_mlp(24, 8, "kaiming", inputs=32)
    with caplog.at_level(logging.WARNING, logger="template.monitor"):
        trainer(1, callbacks=[monitor]).fit(Classifier(net), loader(128, (32,), 128, seed=1))
    variances = [layer["act_var"] for layer in monitor.at_init["layers"]]
    assert min(variances) / variances[0] < 1e-2  # the old rule would have called this vanishing
    assert monitor.at_init["first_failure"] is None
    assert "activation variance" not in caplog.text


@pytest.mark.parametrize("net", NETS)
def test_kaiming_30_is_not_flagged(net, caplog):
    with caplog.at_level(logging.WARNING, logger="template.monitor"):
        at_init = _at_init(net, "kaiming")
    assert at_init["first_failure"] is None
    assert "activation variance" not in caplog.text


class Poisoned(Classifier):
    """Puts a NaN (or `value`) into one weight of `layer` just before the forward of step `at_step`, or
    makes the loss infinite at that step (`layer=None`)."""

    def __init__(self, model, layer: str | None, at_step: int, value: float = math.nan):
        super().__init__(model)
        self.layer, self.at_step, self.value = layer, at_step, value

    def training_step(self, batch, batch_idx):
        if self.global_step == self.at_step and self.layer is not None:
            with torch.no_grad():
                self.model.get_submodule(self.layer).weight[0, 0, 0, 0] = self.value
        loss = super().training_step(batch, batch_idx)
        return loss * math.inf if self.global_step == self.at_step and self.layer is None else loss


def _fit_poisoned(layer, at_step, every_n_steps, on_nonfinite="stop", batches=8, value=math.nan):
    torch.manual_seed(0)
    module = Poisoned(PlainCNN(5, 8, "kaiming"), layer, at_step, value)
    monitor = VarianceMonitor(every_n_steps=every_n_steps, on_nonfinite=on_nonfinite)
    trainer(batches, callbacks=[monitor]).fit(module, loader(8 * batches, (3, 8, 8), 8))


def test_nan_activation_stops_at_the_next_logging_step_naming_the_step_and_first_layer():
    with pytest.raises(NonFiniteError) as error:
        _fit_poisoned("features.2", at_step=3, every_n_steps=5)
    assert str(error.value) == "non-finite activation at step 3 in layer features.2"


def test_nan_is_caught_at_the_end_of_the_epoch_when_no_logging_step_follows():
    with pytest.raises(NonFiniteError, match=r"^non-finite activation at step 3 in layer features.4$"):
        _fit_poisoned("features.4", at_step=3, every_n_steps=100)


def test_infinite_loss_is_named_when_the_activations_were_still_finite():
    with pytest.raises(NonFiniteError, match=r"^non-finite loss at step 2$"):
        _fit_poisoned(None, at_step=2, every_n_steps=4)


def test_an_infinite_activation_is_named_at_its_layer():
    with pytest.raises(NonFiniteError, match=r"^non-finite activation at step 0 in layer features.6$"):
        _fit_poisoned("features.6", at_step=0, every_n_steps=5, value=math.inf)


class Huge(Classifier):
    """Scales the last conv so its outputs are finite values near `scale`, whose float32 norm overflows."""

    def __init__(self, model, scale: float):
        super().__init__(model)
        with torch.no_grad():
            model.features[6].weight.mul_(scale)
            model.classifier.weight.div_(scale)


# (1e30, one step: the first update makes the classifier's own outputs overflow, truly non-finite)
@pytest.mark.parametrize(("scale", "steps"), [(1e20, 2), (1e30, 1)])
def test_finite_values_near_1e20_and_1e30_are_not_called_non_finite(scale, steps):
    torch.manual_seed(0)
    monitor = VarianceMonitor(every_n_steps=1)
    trainer(steps, callbacks=[monitor]).fit(Huge(PlainCNN(5, 8, "kaiming"), scale), loader(16, (3, 8, 8), 8))
    layer = next(x for x in monitor.at_init["layers"] if x["name"] == "features.6")
    assert 1e-2 * scale**2 < layer["act_var"] < 1e2 * scale**2  # in float64, where float32 would read inf


def test_on_nonfinite_warn_warns_once_and_trains_on(caplog):
    with caplog.at_level(logging.WARNING, logger="template.monitor"):
        _fit_poisoned("features.0", at_step=1, every_n_steps=2, on_nonfinite="warn")
    messages = [r.getMessage() for r in caplog.records if "non-finite" in r.getMessage()]
    assert messages == [
        "non-finite activation at step 1 in layer features.0 (stats.on_nonfinite=warn: training goes on)"
    ]
