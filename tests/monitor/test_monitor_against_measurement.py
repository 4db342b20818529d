"""The monitor's mean-field theory against measurement, averaged over weight draws.

A 20-layer conv net of width 64 on 16 × 16 inputs with zero padding and no pooling (a flattening
classifier with 10 outputs), six draws of the weights per case, the statistics read from the monitor's
`at_init`:
- tanh on the critical line (σ²_w = 1.761, σ²_b = 0.05): the mean over draws of measured/theory lies in
  [0.9, 1.1] at every conv layer for activation variance, gradient variance and correlation.
- ReLU with Kaiming and with Glorot: correlations the same. One draw's variance at width 64 strays
  lognormally (Hanin & Rolnick 2018) with the band's log-variance s², up to 1.6 at the 19th conv, so six
  draws cannot pin the mean to 10 %; what they can test is that the mean of log(measured/theory) lies
  within three standard errors, 3 s/√6, of [−s²/2, 0]: between the band's centre (where a fully connected
  net's typical draw sits) and the mean-field line (where averaging over positions pulls a conv net).
- The classifier's 10 outputs are too few units for 10 %: it is held to the same log test.
"""

import math
from statistics import NormalDist

import numpy as np
import pytest
import torch
from monitor_nets import Classifier, trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from template.monitor import VarianceMonitor

DEPTH, WIDTH, SIZE, BATCH, DRAWS, LEVEL = 20, 64, 16, 64, 6, 0.99


class Deep(nn.Sequential):
    def __init__(self, activation: type[nn.Module]):
        layers, channels = [], 3
        for _ in range(DEPTH - 1):
            layers += [nn.Conv2d(channels, WIDTH, 3, padding=1), activation()]
            channels = WIDTH
        super().__init__(*layers, nn.Flatten(), nn.Linear(WIDTH * SIZE * SIZE, 10))


def _draw(model: nn.Module, weight_var, bias_var: float) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            fans = m.weight[0].numel(), m.weight.shape[0] * m.weight[0, 0].numel()
            nn.init.normal_(m.weight, 0, math.sqrt(weight_var(*fans)))
            nn.init.normal_(m.bias, 0, math.sqrt(bias_var)) if bias_var else nn.init.zeros_(m.bias)


def _inputs() -> DataLoader:
    """Samples that share a common image (correlation 0.2 between samples), so correlations are measurable."""
    generator = torch.Generator().manual_seed(0)
    common = torch.randn(1, 3, SIZE, SIZE, generator=generator)
    x = 0.5 * common + torch.randn(BATCH, 3, SIZE, SIZE, generator=generator)
    return DataLoader(TensorDataset(x, torch.randint(0, 10, (BATCH,), generator=generator)), batch_size=BATCH)


def _ratios(activation, weight_var, bias_var: float) -> dict[str, np.ndarray]:
    """(draws, layers) arrays of measured/theory, and the band's log-variance s² per layer."""
    out = {key: [] for key in ("act_var", "grad_var", "corr", "band")}
    for draw in range(DRAWS):
        torch.manual_seed(draw)
        model = Deep(activation)
        _draw(model, weight_var, bias_var)
        monitor = VarianceMonitor(every_n_steps=100, band_level=LEVEL)
        trainer(1, callbacks=[monitor]).fit(Classifier(model), _inputs())
        layers = monitor.at_init["layers"]
        for key in ("act_var", "grad_var", "corr"):
            out[key].append([layer[key] / layer[f"{key}_theory"] for layer in layers])
        z = NormalDist().inv_cdf(0.5 + LEVEL / 2)
        out["band"].append(
            [(math.log(x["act_var_band_high"] / x["act_var_band_low"]) / (2 * z)) ** 2 for x in layers]
        )
    return {key: np.array(values) for key, values in out.items()}


def _within_the_band(ratios: np.ndarray, s2: np.ndarray) -> bool:
    logs, tolerance = np.log(ratios).mean(0), 3 * np.sqrt(s2 / DRAWS)
    return bool(((logs > -s2 / 2 - tolerance) & (logs < tolerance)).all())


@pytest.mark.slow
def test_tanh_on_the_critical_line_matches_at_every_layer():
    ratios = _ratios(nn.Tanh, lambda fan_in, fan_out: 1.761 / fan_in, 0.05)
    for key in ("act_var", "grad_var", "corr"):
        mean = ratios[key][:, :-1].mean(0)
        assert ((mean > 0.9) & (mean < 1.1)).all(), (key, mean.round(3))
    assert _within_the_band(ratios["act_var"][:, -1:], ratios["band"].mean(0)[-1:])


@pytest.mark.slow
@pytest.mark.parametrize(
    "weight_var",
    [lambda fan_in, fan_out: 2 / fan_in, lambda fan_in, fan_out: 2 / (fan_in + fan_out)],
    ids=["kaiming", "glorot"],
)
def test_relu_correlations_match_and_variances_stray_within_the_band(weight_var):
    ratios = _ratios(nn.ReLU, weight_var, 0.0)
    corr = ratios["corr"][:, :-1].mean(0)
    assert ((corr > 0.9) & (corr < 1.1)).all(), corr.round(3)
    s2 = ratios["band"].mean(0)
    for key in ("act_var", "grad_var"):
        assert _within_the_band(ratios[key], s2), (
            key,
            np.log(ratios[key]).mean(0).round(3),
            (-s2 / 2).round(3),
        )


class Narrow(nn.Sequential):
    """One channel in, a non-square 12 × 9 map, stride-2 and dilated convs: data of another shape."""

    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 48, 3, padding=1), nn.Tanh(),
            nn.Conv2d(48, 48, 3, padding=2, dilation=2), nn.Tanh(),
            nn.Conv2d(48, 48, 3, stride=2, padding=1), nn.Tanh(),
            nn.Conv2d(48, 48, 5, padding=2), nn.Tanh(),
            nn.Flatten(), nn.Linear(48 * 6 * 5, 10),
        )  # fmt: skip


def test_theory_follows_a_one_channel_non_square_input_through_strides_and_dilations():
    generator = torch.Generator().manual_seed(0)
    x = 0.5 * torch.randn(1, 1, 12, 9, generator=generator) + torch.randn(
        BATCH, 1, 12, 9, generator=generator
    )
    data = DataLoader(TensorDataset(x, torch.randint(0, 10, (BATCH,), generator=generator)), batch_size=BATCH)
    ratios = {key: [] for key in ("act_var", "grad_var", "corr")}
    for draw in range(DRAWS):
        torch.manual_seed(draw)
        model = Narrow()
        _draw(model, lambda fan_in, fan_out: 1.761 / fan_in, 0.05)
        monitor = VarianceMonitor(every_n_steps=100)
        trainer(1, callbacks=[monitor]).fit(Classifier(model), data)
        for key in ratios:
            ratios[key].append(
                [layer[key] / layer[f"{key}_theory"] for layer in monitor.at_init["layers"][:-1]]
            )
    for key, values in ratios.items():
        mean = np.array(values).mean(0)
        assert ((mean > 0.9) & (mean < 1.1)).all(), (key, mean.round(3))
