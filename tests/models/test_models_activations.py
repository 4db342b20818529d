"""Each activation's gain E[f(y)²]/Var[y], the factor the monitor's theory line multiplies by per layer,
against an independent computation: numerical integration over y ~ N(0, σ²) with scipy."""

import math

import pytest
import torch
from scipy import integrate, stats

from template.models import activations


def integrated_gain(f, sigma: float) -> float:
    second_moment, _ = integrate.quad(
        lambda y: f(y) ** 2 * stats.norm.pdf(y, scale=sigma), -12 * sigma, 12 * sigma
    )
    return second_moment / sigma**2


@pytest.mark.parametrize(
    ("name", "slope", "f", "sigma"),
    [
        ("relu", 0.0, lambda y: max(y, 0.0), 1.0),
        ("leaky_relu", 0.2, lambda y: y if y > 0 else 0.2 * y, 1.0),
        ("leaky_relu", 0.01, lambda y: y if y > 0 else 0.01 * y, 3.0),  # positively homogeneous: any σ
        ("gelu", 0.0, lambda y: y * stats.norm.cdf(y), 1.0),
        ("tanh", 0.0, math.tanh, 0.01),  # Glorot's regime: near the origin tanh is the identity
    ],
)
def test_gain_matches_the_integral(name, slope, f, sigma):
    assert activations.gain(name, slope) == pytest.approx(integrated_gain(f, sigma), rel=1e-3)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "gelu"])
def test_make_builds_the_function_the_gain_is_for(name):
    y = torch.linspace(-3, 3, 61)
    expected = {
        "relu": torch.relu(y),
        "leaky_relu": torch.where(y > 0, y, 0.1 * y),
        "tanh": torch.tanh(y),
        "gelu": y * torch.distributions.Normal(0, 1).cdf(y),
    }[name]
    torch.testing.assert_close(activations.make(name, negative_slope=0.1)(y), expected)
