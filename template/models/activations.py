"""Activations by name, with the gain the variance theory needs.

The gain is E[f(y)²] / Var[y] for y ~ N(0, σ²): He et al. 2015 derive ½ for ReLU and ½(1 + a²) for
leaky ReLU / PReLU with slope a. tanh is ≈ 1 near the origin (Glorot's regime); GELU's value is the
Gaussian integral E[(yΦ(y))²] at σ = 1, computed numerically (it drifts slightly with σ).
"""

from torch import nn

GELU_GAIN = 0.4252  # E[(y Φ(y))²] for y ~ N(0, 1)


def make(name: str, negative_slope: float = 0.01) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "tanh":
        return nn.Tanh()
    return nn.GELU()


def gain(name: str, negative_slope: float = 0.01) -> float:
    return {
        "relu": 0.5,
        "leaky_relu": 0.5 * (1 + negative_slope**2),
        "tanh": 1.0,
        "gelu": GELU_GAIN,
    }[name]
