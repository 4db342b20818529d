"""The length map's log-slope, s = d ln q_{l+1} / d ln q_l, which carries a draw's deviation from layer to
layer in the finite-width band, and what the band does with it.

`meanfield.log_slope` takes the derivative under the expectation (q·d/dq E[φ(√q z)²] = E[x φ(x) φ′(x)]);
here it is held to a central difference of the length map in ln q, whose error, step²/6 times the third
derivative, is below 1e-9 at step 1e-4. ReLU without biases stretches nothing (s = 1 exactly), so its band
must be what it was before the stretch was modelled: the plain sum of each layer's own κ/n, centred at
−V/2.
"""

import math

import pytest
import torch
from torch import nn

from template.theory import finite_width, meanfield
from template.theory.propagation import Propagation

Q = torch.tensor([1e-4, 0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 30.0, 1e3], dtype=torch.float64)
MAPS = [
    ("relu", torch.relu, 2.0, 0.0),
    ("relu, biased", torch.relu, 2.0, 0.1),
    ("gelu", nn.GELU(), 2.0, 0.0),
    ("silu", nn.SiLU(), 2.0, 0.0),
    ("tanh, critical", torch.tanh, 1.761, 0.05),
]


@pytest.mark.parametrize("name, phi, weight_var, bias_var", MAPS, ids=[m[0] for m in MAPS])
def test_log_slope_is_the_length_maps_derivative_in_log_q(name, phi, weight_var, bias_var):
    step = 1e-4
    up, down = (meanfield.length_map(phi, Q * math.exp(d), weight_var, bias_var) for d in (step, -step))
    difference = (up.log() - down.log()) / (2 * step)
    slope = meanfield.log_slope(phi, Q, weight_var, bias_var)
    assert torch.allclose(slope, difference, rtol=0, atol=1e-8), (slope - difference).abs().max()


def test_relu_stretches_nothing_and_gelu_silu_up_to_seventeen_to_nineteen_percent_per_layer():
    """The numbers docs/theory.md's band paragraph quotes, at σ²_w = 2, σ²_b = 0."""
    assert torch.equal(meanfield.log_slope(torch.relu, Q, 2.0, 0.0), torch.ones_like(Q))
    q = torch.linspace(0.01, 30, 3000, dtype=torch.float64)
    for phi, peak in ((nn.GELU(), 1.185), (nn.SiLU(), 1.173)):  # at q = 0.38 and 1.04
        assert float(meanfield.log_slope(phi, q, 2.0, 0.0).max()) == pytest.approx(peak, abs=1e-3)


class ReluNet(nn.Sequential):
    def __init__(self, bias: bool):
        layers, channels = [], 3
        for _ in range(6):
            layers += [nn.Conv2d(channels, 16, 3, padding=1, bias=bias), nn.ReLU()]
            channels = 16
        super().__init__(*layers, nn.Flatten(), nn.Linear(16 * 8 * 8, 10, bias=bias))


def _theory(model):
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    variances = {name: (2 / model.get_submodule(name).weight[0].numel(), 0.0) for name in names}
    return Propagation(model, names).run((3, 8, 8), 1.0, 0.3, variances, 1.0, batch=16)


def test_relus_band_is_unchanged_by_the_stretch(monkeypatch):
    """Without biases every node's slope is 1 and its curvature 0: the band is the one computed with the
    stretch switched off, to rounding, and its centre is −V/2."""
    model = ReluNet(bias=False)
    stretched = _theory(model)
    monkeypatch.setattr(finite_width, "log_stretch", lambda phi, m: (1.0, 0.0))
    plain = _theory(model)
    assert stretched.band == pytest.approx(plain.band, rel=1e-9)
    assert stretched.shift == pytest.approx([-v / 2 for v in plain.band], rel=1e-9)


def test_gelus_band_grows_faster_than_the_plain_sum():
    """GELU at σ²_w = 2 stretches each deviation by up to 1.18 a layer: after six convs its band is wider
    than the sum of its layers' own terms (the stretch switched off gives that sum)."""
    model = nn.Sequential(*[m for m in ReluNet(bias=False)])
    for i, module in enumerate(model):
        if isinstance(module, nn.ReLU):
            model[i] = nn.GELU()
    theory = _theory(model)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(finite_width, "log_stretch", lambda phi, m: (1.0, 0.0))
        plain = _theory(model)
    assert theory.band[0] == pytest.approx(plain.band[0])  # nothing below the first conv to stretch
    assert all(s > p for s, p in zip(theory.band[2:-1], plain.band[2:-1], strict=True))
