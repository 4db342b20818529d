"""The closed forms for positively homogeneous activations (`homogeneous`), against the independent
scipy quadrature of tests/helpers/meanfield_reference.py (its two-slope φ, and φ² for the fourth
moments), on six members of the family — ReLU, two leaky ReLUs, |x|, an asymmetric fork's φ with a
negative slope and TAT's transformed leaky ReLU — and which activations count as homogeneous.

Tolerance: the reference's quadrature holds to about 1e-11 relative; the closed forms are exact up to
rounding (a few 1e-16 through arccos, sin and cos), so 1e-9 of the moment's own scale leaves rounding
room and still catches a factor wrong by far less than the 10 % shown once by hand (scaling `_j1` or
E[φ²] by 1.1 fails every case that reads it)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from template.models.activations import Transformed
from template.theory import finite_width, homogeneous
from template.theory.propagation import Propagation
from tests.helpers import meanfield_reference as reference
from tests.helpers.monitor_nets import PlainCNN

FAMILY = {  # name: (φ, its slopes for x > 0 and x < 0)
    "relu": (nn.ReLU(), 1.0, 0.0),
    "leaky_relu_0.01": (nn.LeakyReLU(0.01), 1.0, 0.01),
    "leaky_relu_0.2": (nn.LeakyReLU(0.2), 1.0, 0.2),
    "abs": (torch.abs, 1.0, -1.0),
    "fork": (lambda x: torch.where(x > 0, 1.5 * x, -0.7 * x), 1.5, -0.7),
    "tat_leaky_relu": (Transformed("leaky_relu", 0.6, input_scale=1.3, output_scale=0.9), 1.17, 0.702),
}
OTHERS = {
    "relu_inplace": (nn.ReLU(inplace=True), True),
    "torch.relu": (torch.relu, True),
    "leaky_relu_functional": (lambda x: F.leaky_relu(x, 0.3), True),
    "tanh": (nn.Tanh(), False),
    "gelu": (nn.GELU(), False),
    "silu": (nn.SiLU(), False),
    "elu": (nn.ELU(), False),
    "relu6": (nn.ReLU6(), False),  # ReLU up to 6: the probe reaches past the clip
    "hardtanh": (nn.Hardtanh(), False),
    "softplus": (nn.Softplus(), False),
    "selu": (nn.SELU(), False),
    "shifted_relu": (lambda x: torch.relu(x - 1e-3), False),  # a kink off 0
    "shifted_tat": (Transformed("leaky_relu", 0.6, input_shift=0.3), False),
    "dks_tanh": (Transformed("tanh", input_scale=1.2, output_scale=1.1), False),
}
RELATIVE = 1e-9


@pytest.mark.parametrize("name", FAMILY)
def test_the_two_slopes_are_found(name):
    phi, a, b = FAMILY[name]
    found = homogeneous.slopes(phi)
    assert (found.a, found.b) == pytest.approx((a, b), rel=1e-14)


@pytest.mark.parametrize("name", OTHERS)
def test_only_positively_homogeneous_activations_have_two_slopes(name):
    phi, expected = OTHERS[name]
    assert (homogeneous.slopes(phi) is not None) == expected


@pytest.mark.parametrize("q", [0.3, 7.0])
@pytest.mark.parametrize("name", FAMILY)
def test_the_one_sample_moments_are_the_gaussian_integrals(name, q):
    """E[φ⁴] is the second moment of φ², an activation of its own to the reference."""
    _, a, b = FAMILY[name]
    two, q_ = homogeneous.TwoSlopes(a, b), torch.tensor(q, dtype=torch.float64)
    second = reference.second_moment("two_slopes", q, a=a, b=b)
    assert float(two.second(q_)) == pytest.approx(second, rel=RELATIVE)
    fourth = reference.second_moment("two_slopes_squared", q, a=a, b=b)
    assert float(two.fourth(q_)) == pytest.approx(fourth, rel=RELATIVE)
    slope = reference.derivative_moment("two_slopes", q, a=a, b=b)
    assert two.derivative_second == pytest.approx(slope, rel=RELATIVE)


@pytest.mark.parametrize("c", [-1.0, -0.9, -0.3, 0.0, 0.5, 0.99, 1.0])
@pytest.mark.parametrize("name", FAMILY)
def test_the_cross_moments_are_the_two_dimensional_gaussian_integrals(name, c):
    """Held to E[φ²] and E[φ⁴], not to the cross moment itself, which mixed slopes can make vanish."""
    _, a, b = FAMILY[name]
    two, q = homogeneous.TwoSlopes(a, b), 1.7
    q_, qab = torch.tensor(q, dtype=torch.float64), torch.tensor(c * q, dtype=torch.float64)
    expected = reference.cross_moment("two_slopes", q, c, a=a, b=b)
    assert float(two.cross(q_, qab)) == pytest.approx(expected, abs=RELATIVE * float(two.second(q_)))
    expected = reference.cross_moment("two_slopes_squared", q, c, a=a, b=b)
    assert float(two.cross_squared(q_, qab)) == pytest.approx(expected, abs=RELATIVE * float(two.fourth(q_)))


def _theory(activation, depth: int = 6):
    torch.manual_seed(0)
    model = PlainCNN(depth, 8, "kaiming")
    for i, module in enumerate(model.features):
        if isinstance(module, nn.ReLU):
            model.features[i] = activation
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    variances = {name: (2.2 / model.get_submodule(name).weight[0].numel(), 0.01) for name in names}
    return Propagation(model, names).run((3, 8, 8), 1.0, 0.3, variances, 1.0, batch=16)


@pytest.mark.parametrize("name", ["relu", "leaky_relu_0.2"])
def test_the_closed_forms_give_the_theory_the_quadratures_give(monkeypatch, name):
    """The same net's maps with the closed forms and with the quadrature path every other activation
    takes (its average over units, its log-stretch by a central difference): they agree to the polar
    rule's accuracy on ReLU, 1e-8 of E[φ²] (tests/theory/test_theory_meanfield.py)."""
    closed = _theory(FAMILY[name][0])
    monkeypatch.setattr(homogeneous, "slopes", lambda phi: None)
    integrated = _theory(FAMILY[name][0])
    for key in ("act_var", "corr", "grad_var", "band", "shift"):
        assert getattr(closed, key) == pytest.approx(getattr(integrated, key), rel=1e-7, abs=1e-12), key


def test_the_log_stretch_of_a_homogeneous_activation_is_one_without_curvature():
    """What the closed-form path assumes instead of calling `log_stretch`, checked by it."""
    m = torch.tensor([[0.5, 1.0], [2.0, 3.0]], dtype=torch.float64)
    slope, curvature = finite_width.log_stretch(nn.LeakyReLU(0.2), m)
    assert slope == pytest.approx(1.0, abs=1e-9)
    assert curvature == pytest.approx(0.0, abs=1e-5)  # the central difference's own error


class LearnedSlope(nn.LeakyReLU):
    """A fork's leaky ReLU whose negative slope is trained (a subclass: the theory knows its kind)."""

    def __init__(self, slope: float):
        super().__init__()
        self.slope = nn.Parameter(torch.tensor(slope))

    def forward(self, x):
        return torch.where(x > 0, x, self.slope * x)


def test_an_activation_that_trains_its_slopes_is_probed_at_every_run():
    """`Propagation` probes each activation's slopes once — unless it has parameters of its own: after
    its slope moves, the next run follows it (the second moment of leaky ReLU's output grows with
    (1 + a²)/2 at every layer), as a fresh `Propagation` does."""
    torch.manual_seed(0)
    model = PlainCNN(4, 8, "kaiming")
    for i, module in enumerate(model.features):
        if isinstance(module, nn.ReLU):
            model.features[i] = LearnedSlope(0.1)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    variances = {name: (2.0 / model.get_submodule(name).weight[0].numel(), 0.0) for name in names}
    propagation = Propagation(model, names)
    before = propagation.run((3, 8, 8), 1.0, 0.3, variances, 1.0, batch=16)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LearnedSlope):
                module.slope.fill_(0.5)
    after = propagation.run((3, 8, 8), 1.0, 0.3, variances, 1.0, batch=16)
    fresh = Propagation(model, names).run((3, 8, 8), 1.0, 0.3, variances, 1.0, batch=16)
    assert after.act_var == pytest.approx(fresh.act_var, rel=1e-12)
    assert after.act_var[-1] > before.act_var[-1] * 1.1
