"""The finite-width band holds its nominal share of single weight draws.

Hanin & Rolnick 2018's setting: fully connected ReLU nets of width 8, depth 10, He-normal weights, a batch
of 128 Gaussian inputs, 300 independent draws. The band (its variance propagated by `Propagation`, its
edges by `theory.band`) is compared with the variance each draw measures, computed here with plain torch.
Layers of one draw are not independent, so the standard error of the share outside comes from the
per-draw shares: the share must lie within three of them of 1 − level.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from template.theory.band import band
from template.theory.propagation import Propagation

WIDTH, DEPTH, INPUTS, BATCH, DRAWS = 8, 10, 32, 128, 300


def _shares_outside(level: float) -> np.ndarray:
    torch.manual_seed(0)
    layers = [nn.Linear(INPUTS, WIDTH)]
    for _ in range(DEPTH - 1):
        layers += [nn.ReLU(), nn.Linear(WIDTH, WIDTH)]
    model = nn.Sequential(*layers)
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    propagation = Propagation(model, names)
    x = torch.randn(BATCH, INPUTS)
    units = x / x.norm(dim=1, keepdim=True)
    input_corr = float((units.sum(0).norm() ** 2 - BATCH) / (BATCH * (BATCH - 1)))
    input_moment = float((x**2).mean())
    shares = []
    for _ in range(DRAWS):
        for layer in model:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight)
                nn.init.zeros_(layer.bias)
        measured, h = [], x
        with torch.no_grad():
            for layer in model:
                h = layer(h)
                if isinstance(layer, nn.Linear):
                    measured.append(float(h.var()))
        variances = {
            n: (float(m.weight.var(correction=0)), 0.0) for n, m in model.named_modules() if n in names
        }
        theory = propagation.run(
            (INPUTS,), input_moment, input_corr * input_moment, variances, math.nan, BATCH
        )
        low, high = band(theory.act_var, theory.band, level)
        shares.append(np.mean((np.array(measured) < low) | (np.array(measured) > high)))
    return np.array(shares)


@pytest.mark.parametrize("level", [0.9, 0.99])
def test_the_share_of_layers_outside_the_band_matches_its_level(level):
    shares = _shares_outside(level)
    standard_error = shares.std(ddof=1) / math.sqrt(DRAWS)
    assert abs(shares.mean() - (1 - level)) < 3 * max(standard_error, 1e-3), (shares.mean(), standard_error)
