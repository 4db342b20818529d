"""`tat` and `dks`: the activation dks's solver chooses for the model's depth, held to what the papers ask
of it — by the leaky ReLU's closed-form c-map (Cho & Saul's arc-cosine kernel, written out here) and by
this project's own quadrature of the q- and c-maps (template/theory/meanfield.py, which shares no code
with dks) — and a net's measured correlation at init against the composed c-map, over draws."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from template import inits, models
from template.errors import UsageError
from template.models.activations import Transformed
from template.theory import meanfield


def leaky_cmap(c: float, slope: float) -> float:
    """E[φ(u)φ(v)] / E[φ(u)²] for φ = LeakyReLU_slope, (u, v) unit Gaussians correlated by c: the
    arc-cosine kernel of degree 1, (1−a)²(√(1−c²) + (π − arccos c) c)/π + 2ac, over 1 + a²."""
    angle = math.acos(max(-1.0, min(1.0, c)))
    kernel = (1 - slope) ** 2 * (math.sqrt(max(0.0, 1 - c * c)) + (math.pi - angle) * c) / math.pi
    return (kernel + 2 * slope * c) / (1 + slope * slope)


def compose(cmap, c: float, times: int) -> float:
    for _ in range(times):
        c = cmap(c)
    return c


def transformed(activation: str, depth: int, scheme: str, **options) -> Transformed:
    """The activation `scheme` puts in a vanilla net of `depth` weight layers (depth − 1 activations)."""
    model = models.build("vanilla", depth=depth, width=4, activation=activation)
    inits.initialize(model, scheme, **options)
    found = [m for m in model.modules() if isinstance(m, Transformed)]
    assert len(found) == depth - 1 and all(m.extra_repr() == found[0].extra_repr() for m in found)
    return found[0]


@pytest.mark.parametrize(("layers", "eta"), [(29, 0.9), (99, 0.9), (199, 0.9), (199, 0.5)])
def test_tat_chooses_the_slope_whose_composed_cmap_maps_zero_to_eta(layers, eta):
    phi = transformed("leaky_relu", layers + 1, "tat", eta=eta)
    assert phi.base == "leaky_relu" and 0 < phi.negative_slope < 1
    assert compose(lambda c: leaky_cmap(c, phi.negative_slope), 0.0, layers) == pytest.approx(eta, abs=1e-6)
    # Q(q) = q at every q: the output scale is √(2/(1 + α²)) (the project's quadrature, exact for leaky ReLU)
    q = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    torch.testing.assert_close(meanfield.moment(phi, q), q, rtol=1e-9, atol=0)
    # the project's c-map of the transformed module is the closed form at every c
    for c in (-0.5, 0.0, 0.3, 0.9, 0.99):
        assert float(meanfield.cross_moment(phi, 1.0, c)) == pytest.approx(
            leaky_cmap(c, phi.negative_slope), abs=1e-7
        )


def test_a_slope_ten_percent_off_misses_eta_by_far_more_than_the_tolerance():
    """What the first test's 1e-6 guards: α 10 % larger moves the 199-layer C_f(0) by 0.007."""
    phi = transformed("leaky_relu", 200, "tat", eta=0.9)
    wrong = compose(lambda c: leaky_cmap(c, 1.1 * phi.negative_slope), 0.0, 199)
    assert abs(wrong - 0.9) > 1e-3


@pytest.mark.parametrize("activation", ["tanh", "gelu", "silu", "leaky_relu"])
def test_dks_meets_its_four_conditions_in_the_projects_own_maps(activation):
    layers, zeta = 29, 1.5
    phi = transformed(activation, layers + 1, "dks", zeta=zeta)
    assert float(meanfield.moment(phi, 1.0)) == pytest.approx(1.0, abs=1e-6)  # Q(1) = 1
    assert float(meanfield.log_slope(phi, 1.0, 1.0, 0.0)) == pytest.approx(1.0, abs=1e-5)  # Q'(1) = 1
    assert float(meanfield.cross_moment(phi, 1.0, 0.0)) == pytest.approx(0.0, abs=1e-6)  # C(0) = 0
    slope = float(meanfield.moment(phi, 1.0, derivative=True))  # C'(1) = E[φ'(z)²] at q = 1
    assert slope**layers == pytest.approx(zeta, rel=1e-4)  # the chain's C_f'(1) = ζ


@pytest.mark.slow  # dks's solver restarts from random points for a smooth TAT: about 10 s
def test_tat_for_a_smooth_activation_bounds_the_chains_curvature():
    layers, tau = 29, 0.3
    phi = transformed("tanh", layers + 1, "tat", tau=tau)
    second = torch.vmap(torch.func.grad(torch.func.grad(phi)))  # φ'' at each point of a 1-d tensor
    assert float(meanfield.moment(phi, 1.0)) == pytest.approx(1.0, abs=1e-6)
    assert float(meanfield.moment(phi, 1.0, derivative=True)) == pytest.approx(1.0, abs=1e-5)  # C'(1)
    # with C'(1) = 1 the chain's C_f''(1) is L·C''(1), C''(1) = E[φ''(z)²]
    curvature = meanfield.moment(lambda x: second(x.flatten()).reshape(x.shape), 1.0)
    assert layers * float(curvature) == pytest.approx(tau, rel=1e-3)


def test_a_tat_nets_correlation_at_init_follows_the_composed_cmap():
    """64 mutually orthogonal inputs (every pair at c = 0, q = 1 as TAT assumes) through 30 orthogonal
    layers of width 128, 16 draws of the weights; per draw the mean cosine over the 2,016 pairs at the
    output. An orthogonal layer keeps inner products exactly, so the draws scatter only through the
    activations' sums over 128 units. Tolerance: 4 standard errors of the mean over the 16 draws (the
    draws' spread was 0.02-0.03 at width 128-256; the mean sat 0.4-0.8 s.e. from the theory)."""
    width, layers, eta, draws, inputs = 128, 30, 0.9, 16, 64
    torch.manual_seed(0)
    blocks = []
    for _ in range(layers):
        blocks += [nn.Linear(width, width), nn.LeakyReLU()]
    model = nn.Sequential(*blocks, nn.Linear(width, width)).double()
    x = torch.linalg.qr(torch.randn(width, inputs, dtype=torch.float64))[0].T * math.sqrt(width)
    pairs = ~torch.eye(inputs, dtype=torch.bool)
    measured = []
    for _ in range(draws):
        inits.initialize(model, "tat", eta=eta)
        with torch.no_grad():
            features = torch.nn.functional.normalize(model(x), dim=1)  # (inputs, width)
        measured.append(float((features @ features.T)[pairs].mean()))
    phi = next(m for m in model.modules() if isinstance(m, Transformed))
    theory = compose(lambda c: leaky_cmap(c, phi.negative_slope), 0.0, layers)
    assert theory == pytest.approx(eta, abs=1e-6)
    mean, error = np.mean(measured), np.std(measured, ddof=1) / math.sqrt(draws)
    assert abs(mean - theory) < 4 * error, (mean, theory, error)
    assert abs(mean - 0.9 * theory) > 4 * error  # a theory 10 % low is told apart


def test_refusals_name_the_problem():
    with pytest.raises(UsageError) as error:
        inits.initialize(models.build("vanilla", depth=6, activation="relu"), "tat")
    assert str(error.value) == (
        "init.name=tat transforms model.activation leaky_relu, tanh, gelu or silu; the model has ReLU; "
        "ReLU has no negative slope to choose, use leaky_relu"
    )
    with pytest.raises(UsageError) as error:
        inits.initialize(models.build("resnet", depth=20, activation="leaky_relu"), "dks")
    assert str(error.value).startswith(
        "init.name=dks shapes the kernel of a chain of layers (model.name plain, vgg or vanilla); Fixup"
    )
    assert str(error.value).endswith("'stage1.block0' has paths of its own")
    mixed = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.SiLU(), nn.Linear(4, 2))
    with pytest.raises(UsageError) as error:
        inits.initialize(mixed, "dks")
    assert str(error.value) == (
        "init.name=dks needs one activation throughout; the model has [('silu', 0.0), ('tanh', 0.0)]"
    )
    with pytest.raises(UsageError) as error:  # 3 ReLU layers send c = 0 only to 0.605: 0.9 is out of reach
        inits.initialize(models.build("vanilla", depth=4, activation="leaky_relu"), "tat")
    assert str(error.value) == (
        "init.options.eta=0.9 cannot be reached by 3 leaky_relu layers: even ReLU's c-map sends 0 to 0.605 "
        "over them; choose eta below that or more layers"
    )
    assert compose(lambda c: leaky_cmap(c, 0.0), 0.0, 3) == pytest.approx(0.605, abs=5e-4)
    with pytest.raises(UsageError) as error:
        inits.initialize(models.build("vanilla", depth=6, activation="leaky_relu"), "tat", eta=1.0)
    assert "eta" in str(error.value) and "a number in (0, 1)" in str(error.value)
