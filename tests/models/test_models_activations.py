"""The activation registry: every name builds the function it names, an unknown name is refused in one
line, and the second moment the monitor's theory integrates agrees with scipy's quadrature."""

import math

import pytest
import torch
from scipy import integrate, stats

from template.errors import UsageError
from template.models import activations
from template.theory import meanfield

FUNCTIONS = {
    "relu": lambda y: max(y, 0.0),
    "leaky_relu": lambda y: y if y > 0 else 0.1 * y,
    "tanh": math.tanh,
    "gelu": lambda y: y * stats.norm.cdf(y),
    "silu": lambda y: y / (1 + math.exp(-y)),
}


def test_every_registered_activation_is_covered_here():
    assert set(activations.available()) == set(FUNCTIONS)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_make_builds_the_named_function(name):
    y = torch.linspace(-3, 3, 61, dtype=torch.float64)
    built = activations.make(name, negative_slope=0.1)(y)
    torch.testing.assert_close(
        built, torch.tensor([FUNCTIONS[name](float(v)) for v in y], dtype=torch.float64)
    )


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("q", [0.01, 1.0, 4.0])
def test_second_moment_matches_scipy(name, q):
    f, sigma = FUNCTIONS[name], math.sqrt(q)
    expected, _ = integrate.quad(
        lambda y: f(y) ** 2 * stats.norm.pdf(y, scale=sigma), -12 * sigma, 12 * sigma
    )
    phi = activations.make(name, negative_slope=0.1)
    assert float(meanfield.moment(phi, q)) == pytest.approx(expected, rel=1e-6)


def test_an_unknown_activation_is_refused_naming_the_choices():
    with pytest.raises(UsageError) as error:
        activations.make("softsign")
    assert str(error.value) == (
        "model.activation='softsign' is unknown; choose one of: relu, leaky_relu, tanh, gelu, silu"
    )
