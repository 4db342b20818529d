"""The quadratures the theory skips for a positively homogeneous activation (`finite_width.homogeneous`:
ReLU, leaky ReLU), whose moments are linear in q: the average over units changes nothing and the
log-stretch is 1 with no curvature. Skipping them must leave the theory as the quadratures give it."""

import pytest
import torch
from torch import nn

from template.theory import finite_width
from template.theory.propagation import Propagation
from tests.helpers.monitor_nets import PlainCNN

HOMOGENEOUS = [nn.ReLU(), nn.ReLU(inplace=True), nn.LeakyReLU(0.01), nn.LeakyReLU(0.2), torch.relu]
BENT = [nn.Tanh(), nn.GELU(), nn.SiLU(), nn.ELU(), nn.ReLU6(), nn.Hardtanh(), nn.Softplus(), nn.SELU()]


@pytest.mark.parametrize("phi", HOMOGENEOUS + BENT, ids=str)
def test_only_positively_homogeneous_activations_are_called_so(phi):
    assert finite_width.homogeneous(phi) == any(phi is h for h in HOMOGENEOUS)


def _theory(activation: nn.Module, depth: int = 6):
    torch.manual_seed(0)
    model = PlainCNN(depth, 8, "kaiming")
    for i, module in enumerate(model.features):
        if isinstance(module, nn.ReLU):
            model.features[i] = activation
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    variances = {name: (2.2 / model.get_submodule(name).weight[0].numel(), 0.01) for name in names}
    return Propagation(model, names).run((3, 8, 8), 1.0, 0.3, variances, 1.0, batch=16)


@pytest.mark.parametrize("activation", [nn.ReLU(), nn.LeakyReLU(0.2)], ids=str)
def test_the_skipped_quadratures_would_give_the_same_theory(monkeypatch, activation):
    skipped = _theory(activation)
    monkeypatch.setattr(finite_width, "homogeneous", lambda phi: False)
    computed = _theory(activation)
    for key in ("act_var", "corr", "grad_var", "band", "shift"):
        assert getattr(skipped, key) == pytest.approx(getattr(computed, key), rel=1e-9, abs=1e-12), key
