"""The Jacobian's mean-field theory against numbers it did not compute: the dense Jacobian (torch.func.jacrev)
of deep ReLU nets averaged over weight draws, Pennington et al. 2017/2018's free-probability closed forms,
and the exact finite-size ν(WWᵀ) of Gaussian weights."""

import math

import pytest
import torch
from torch import nn

from template.monitor import jacobian
from template.theory import spectrum
from template.theory.propagation import Propagation

Z = 4.0  # standard errors: a two-sided miss this far out has probability 6e-5 per check


def _relu_net(width: int, linears: int, distribution: str) -> nn.Sequential:
    """Linear, ReLU, ..., Linear at He's σ²_w = 2, zero biases, in float64."""
    layers = []
    for i in range(linears):
        layer = nn.Linear(width, width).double()
        if distribution == "orthogonal":
            nn.init.orthogonal_(layer.weight, gain=math.sqrt(2))
        else:
            nn.init.normal_(layer.weight, 0, math.sqrt(2 / width))
        nn.init.zeros_(layer.bias)
        layers += [layer, nn.ReLU()] if i < linears - 1 else [layer]
    return nn.Sequential(*layers)


def _dense_moments(model: nn.Module, x: torch.Tensor, span: spectrum.Stretch) -> tuple[float, float]:
    """Mean and mean square of the squared singular values of each sample's full Jacobian."""
    spectra = []
    for i in range(x.shape[0]):
        body = jacobian._Body(model, x[i : i + 1], span.start, span.end)
        h = body.start_output()
        full = torch.func.jacrev(body)(h).reshape(body(h).numel(), h.numel())
        spectra.append(torch.linalg.svdvals(full.detach()).square())
    spectra = torch.stack(spectra)
    return float(spectra.mean()), float(spectra.square().mean())


def _theory(model: nn.Module, span: spectrum.Stretch, names: list[str], width: int) -> dict:
    with torch.no_grad():
        variances = {name: (float(model.get_submodule(name).weight.var(correction=0)), 0.0) for name in names}
    result = Propagation(model, names).run((width,), 1.0, 0.0, variances, 1.0)
    weights = spectrum.weight_terms(model, span)
    return spectrum.mean_field(span, names, result.act_var, result.grad_var, nn.ReLU(), weights)


@pytest.mark.slow  # 40 draws of dense 256 × 256 Jacobians: 7 s each, so in make test-all
@pytest.mark.parametrize("distribution", ["orthogonal", "normal"])
def test_a_deep_relu_nets_spectrum_is_the_free_probability_sum_over_draws(distribution):
    """J from the first layer's output to the last's crosses 6 ReLUs and 6 weight matrices. Closed form
    (Pennington et al. 2018): m₁ = Π σ²_w E[φ′²] = 1, ν = Σ [E φ′⁴/(E φ′²)² − 1] + Σ ν(WWᵀ) = 6·1 + 6·ν_W,
    ν_W = 0 (orthogonal) or 1 + 1/n (Gaussian). The theory must give these; the dense Jacobians of 40
    draws × 4 inputs must give them within 4 standard errors over draws (delta method for ν), plus the
    theory's own finite-width error on ν, which the dense Jacobians show is about (layers)/n relative
    (+10 %, +5 %, +2.8 % at n = 64, 128, 256 for the orthogonal net): 7/256 here."""
    width, linears, draws, samples = 256, 7, 40, 4
    nu_weights = 0.0 if distribution == "orthogonal" else 1 + 1 / width
    first, second, theories = [], [], []
    for draw in range(draws):
        torch.manual_seed(draw)
        model = _relu_net(width, linears, distribution)
        names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
        x = torch.randn(samples, width, dtype=torch.float64)
        span = jacobian.stretch(model, names, x, start=names[0], end=names[-1])
        m1, m2 = _dense_moments(model, x, span)
        first.append(m1)
        second.append(m2)
        theories.append(_theory(model, span, names, width))
    mean = torch.tensor(first, dtype=torch.float64)
    square = torch.tensor(second, dtype=torch.float64)
    m1, m2 = float(mean.mean()), float(square.mean())
    nu = m2 / m1**2 - 1
    covariance = torch.cov(torch.stack([mean, square])) / draws
    gradient = torch.tensor([-2 * m2 / m1**3, 1 / m1**2], dtype=torch.float64)  # ∂ν/∂(m₁, m₂)
    nu_se = float(gradient @ covariance @ gradient).__pow__(0.5)
    m1_se = float(covariance[0, 0]) ** 0.5
    closed_nu = (linears - 1) * (1 + nu_weights)
    # The theory reads each draw's σ²_w off its weights: n² Gaussian entries put each layer's 2·√(2)/n
    # off 2 (one s.d.), six layers √6 times that on m₁; ν(WWᵀ) of one draw strays by about 0.01.
    drawn = Z * math.sqrt(2 * (linears - 1)) / width
    for theory in theories:
        assert theory["sv2_mean"] == pytest.approx(1.0, rel=drawn)
        assert theory["sv2_nvar"] == pytest.approx(closed_nu, abs=Z * 0.01 * math.sqrt(linears - 1))
    theory_m1 = sum(t["sv2_mean"] for t in theories) / draws
    theory_nu = sum(t["sv2_nvar"] for t in theories) / draws
    assert abs(m1 - theory_m1) < Z * m1_se, (m1, m1_se, theory_m1)
    assert abs(nu - theory_nu) < Z * nu_se + theory_nu * linears / width, (nu, nu_se, theory_nu)


def test_the_gram_matrices_finite_size_nvar_is_exact_for_gaussian_weights():
    """ν(WWᵀ) = E[λ²]/E[λ]² − 1 by Wick's theorem: 1 + 1/n for a dense real n×n Gaussian matrix, exactly 1
    for a complex one. A stride-1 circular conv's Gram matrix splits into c×c blocks, one per frequency of
    the H×W map, complex Gaussian except at the 4 self-conjugate frequencies of an even map, which are
    real: ν = 1 + 4/(H·W·c). Over 40 draws each, within 4 standard errors of the draws' mean (the
    previous expectation, 1 − 1/c, lies 15 and 6 standard errors away)."""
    torch.manual_seed(0)
    conv, dense = [], []
    for _ in range(40):
        layer = nn.Conv2d(64, 64, 3, padding=1, padding_mode="circular")
        nn.init.normal_(layer.weight, 0, 1 / 24)
        conv.append(spectrum.weight_nvar(layer, (64, 8, 8)))
        linear = nn.Linear(64, 64)
        nn.init.normal_(linear.weight, 0, 1 / 8)
        dense.append(spectrum.weight_nvar(linear, (64,)))
    for values, expected in ((conv, 1 + 4 / (8 * 8 * 64)), (dense, 1 + 1 / 64)):
        values = torch.tensor(values, dtype=torch.float64)
        stderr = float(values.std() / math.sqrt(len(values)))
        assert abs(float(values.mean()) - expected) < Z * stderr, (float(values.mean()), stderr, expected)
