"""The closed forms for positively homogeneous activations (`homogeneous`), against scipy's adaptive
quadrature of the defining integrals, on six members of the family — ReLU, two leaky ReLUs, |x|, an asymmetric
fork's φ with a negative slope and TAT's transformed leaky ReLU — and which activations count as homogeneous.

Tolerance: scipy's quadrature is asked for 1e-12 relative; the closed forms are exact up to rounding (a
few 1e-16 through arccos, sin and cos), so 1e-9 of the moment's own scale leaves rounding room and still
catches a factor wrong by far less than the 10 % shown once by hand (scaling `_j1` by 1.1 fails
every cross-moment case)."""

import math

import pytest
import torch
import torch.nn.functional as F
from scipy import integrate
from torch import nn

from template.models.activations import Transformed
from template.theory import finite_width, homogeneous
from template.theory.propagation import Propagation
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


def _quad(f, kink: float) -> float:
    """∫ f over [−13, 13] (the Gaussian weight beyond is below 1e-37), split where f has its kink."""
    halves = ((-13.0, kink), (kink, 13.0))
    return sum(integrate.quad(f, lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0] for lo, hi in halves)


def _expect(f, q: float) -> float:
    """E_z[f(√q z)] by scipy's QUADPACK, split at the kink."""
    density = lambda z: f(math.sqrt(q) * z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    return sum(
        integrate.quad(density, lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0]
        for lo, hi in ((-13, 0), (0, 13))
    )


def _expect_pair(f, g, q: float, c: float) -> float:
    """E[f(u_a) g(u_b)], u_a = √q z₁, u_b = √q (c z₁ + √(1 − c²) z₂): nested QUADPACK, each split at the
    kink of its variable (z₂ = −c z₁ / √(1 − c²), where u_b changes sign)."""
    s = math.sqrt(max(1 - c * c, 0.0))
    root = math.sqrt(q)

    def inner(z1: float) -> float:
        if s == 0:
            return g(root * c * z1) * math.sqrt(2 * math.pi)  # u_b = c u_a: z₂'s density integrates out
        kink = min(max(-c * z1 / s, -13.0), 13.0)
        density = lambda z2: g(root * (c * z1 + s * z2)) * math.exp(-z2 * z2 / 2)  # noqa: E731
        return _quad(density, kink)

    outer = lambda z1: f(root * z1) * inner(z1) * math.exp(-z1 * z1 / 2)  # noqa: E731
    total = sum(
        integrate.quad(outer, lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0] for lo, hi in ((-13, 0), (0, 13))
    )
    return total / (2 * math.pi)


def _scalar(a: float, b: float):
    return lambda x: a * x if x > 0 else b * x


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
    _, a, b = FAMILY[name]
    phi, two = _scalar(a, b), homogeneous.TwoSlopes(a, b)
    q_ = torch.tensor(q, dtype=torch.float64)
    assert float(two.second(q_)) == pytest.approx(_expect(lambda x: phi(x) ** 2, q), rel=RELATIVE)
    assert float(two.fourth(q_)) == pytest.approx(_expect(lambda x: phi(x) ** 4, q), rel=RELATIVE)
    slope = _expect(lambda x: (a if x > 0 else b) ** 2, q)
    assert two.derivative_second == pytest.approx(slope, rel=RELATIVE)


@pytest.mark.parametrize("c", [-1.0, -0.9, -0.3, 0.0, 0.5, 0.99, 1.0])
@pytest.mark.parametrize("name", FAMILY)
def test_the_cross_moments_are_the_two_dimensional_gaussian_integrals(name, c):
    """Held to E[φ²] and E[φ⁴], not to the cross moment itself, which mixed slopes can make vanish."""
    _, a, b = FAMILY[name]
    phi, two, q = _scalar(a, b), homogeneous.TwoSlopes(a, b), 1.7
    q_, qab = torch.tensor(q, dtype=torch.float64), torch.tensor(c * q, dtype=torch.float64)
    expected = _expect_pair(phi, phi, q, c)
    assert float(two.cross(q_, qab)) == pytest.approx(expected, abs=RELATIVE * float(two.second(q_)))
    squared = lambda x: phi(x) ** 2  # noqa: E731
    expected = _expect_pair(squared, squared, q, c)
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
