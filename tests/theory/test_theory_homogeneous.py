"""The quadratures the theory skips for a positively homogeneous activation (`finite_width.homogeneous`:
ReLU, leaky ReLU), whose moments are linear in q: the average over units changes nothing and the
log-stretch is 1 with no curvature. Skipping them must leave the theory as the quadratures give it."""

import pytest
import torch
from torch import nn

from template.theory import finite_width
from template.theory.propagation import Propagation
from tests.helpers.monitor_nets import PlainCNN

HOMOGENEOUS = {
    "relu": nn.ReLU(),
    "relu_inplace": nn.ReLU(inplace=True),
    "leaky_relu_0.01": nn.LeakyReLU(0.01),
    "leaky_relu_0.2": nn.LeakyReLU(0.2),
    "torch.relu": torch.relu,
}
BENT = {
    "tanh": nn.Tanh(),
    "gelu": nn.GELU(),
    "silu": nn.SiLU(),
    "elu": nn.ELU(),
    "relu6": nn.ReLU6(),
    "hardtanh": nn.Hardtanh(),
    "softplus": nn.Softplus(),
    "selu": nn.SELU(),
}


@pytest.mark.parametrize("name", [*HOMOGENEOUS, *BENT])
def test_only_positively_homogeneous_activations_are_called_so(name):
    assert finite_width.homogeneous(HOMOGENEOUS.get(name) or BENT[name]) == (name in HOMOGENEOUS)


def _theory(activation: nn.Module, depth: int = 6):
    torch.manual_seed(0)
    model = PlainCNN(depth, 8, "kaiming")
    for i, module in enumerate(model.features):
        if isinstance(module, nn.ReLU):
            model.features[i] = activation
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    variances = {name: (2.2 / model.get_submodule(name).weight[0].numel(), 0.01) for name in names}
    return Propagation(model, names).run((3, 8, 8), 1.0, 0.3, variances, 1.0, batch=16)


@pytest.mark.parametrize("activation", [nn.ReLU(), nn.LeakyReLU(0.2)], ids=["relu", "leaky_relu"])
def test_the_skipped_quadratures_would_give_the_same_theory(monkeypatch, activation):
    skipped = _theory(activation)
    monkeypatch.setattr(finite_width, "homogeneous", lambda phi: False)
    computed = _theory(activation)
    for key in ("act_var", "corr", "grad_var", "band", "shift"):
        assert getattr(skipped, key) == pytest.approx(getattr(computed, key), rel=1e-9, abs=1e-12), key
