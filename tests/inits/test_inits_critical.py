"""`critical`: the weight variance from the critical line of the model's own activation, drawn as the
option says, with Kolmogorov-Smirnov tests as for every other scheme."""

import math

import pytest
import torch
from scipy import stats
from torch import nn

from template import inits, models
from template.errors import UsageError

P_MIN = 1e-4  # as PyTorch's own init tests


def _weights(model: nn.Module, name: str) -> torch.Tensor:
    return dict(model.named_parameters())[name].detach().flatten()


@pytest.mark.parametrize(
    ("activation", "bias_var", "weight_var"), [("tanh", 0.05, 1.761), ("relu", 0.0, 2.0)]
)
def test_normal_weights_have_the_critical_variance_of_the_activation(activation, bias_var, weight_var):
    torch.manual_seed(0)
    model = models.build("plain", depth=4, width=64, activation=activation)
    report = inits.initialize(model, "critical", bias_var=bias_var)
    w = _weights(model, "conv2.weight")  # 64 x 64 x 3 x 3: 36,864 samples
    std = math.sqrt(weight_var / (64 * 9))
    assert stats.kstest(w.numpy(), stats.norm(0, std).cdf).pvalue > P_MIN
    assert w.var().item() * 64 * 9 == pytest.approx(weight_var, rel=0.03)
    assert report.set_by["conv2.weight"].startswith(f"critical (σ²_w={weight_var:.4g}")
    assert report.set_by["conv2.bias"] == report.set_by["conv2.weight"]


def test_biases_are_normal_with_the_chosen_variance():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 20000), nn.Tanh(), nn.Linear(20000, 3))
    inits.initialize(model, "critical", bias_var=0.2)
    assert stats.kstest(_weights(model, "0.bias").numpy(), stats.norm(0, math.sqrt(0.2)).cdf).pvalue > P_MIN


def test_orthogonal_puts_a_scaled_orthogonal_matrix_at_the_centre_tap_only():
    torch.manual_seed(0)
    model = models.build("plain", depth=7, width=16, activation="tanh")
    inits.initialize(model, "critical", distribution="orthogonal")
    weight = dict(model.named_parameters())["conv2.weight"].detach()  # 16 x 16 x 3 x 3
    centre = weight[:, :, 1, 1]
    torch.testing.assert_close(centre @ centre.T, 1.761 * torch.eye(16), atol=2e-3, rtol=0)
    assert weight.abs().sum() == pytest.approx(centre.abs().sum().item())


def test_a_model_without_an_activation_or_a_stable_critical_point_is_refused_in_one_line():
    with pytest.raises(UsageError, match=r"^init.name=critical needs an elementwise activation"):
        inits.initialize(nn.Linear(3, 2), "critical")
    relu = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1))
    with pytest.raises(UsageError) as refused:
        inits.initialize(relu, "critical", bias_var=0.1)
    assert str(refused.value) == (
        "init.options.bias_var=0.1: ReLU has no stable critical point there: positively homogeneous, its "
        "stable fixed point has χ₁ = 1 − σ²_b/q* < 1 at every σ²_b > 0: "
        "critical only at bias_var=0 (σ²_w = 2)"
    )
    gelu = nn.Sequential(nn.Linear(3, 3), nn.GELU(), nn.Linear(3, 1))
    with pytest.raises(UsageError) as refused:
        inits.initialize(gelu, "critical", bias_var=0.05)
    assert str(refused.value) == (
        "init.options.bias_var=0.05: GELU has no stable critical point there: χ₁ = 1 only on the unstable "
        "branch (σ²_w=2.303, q=0.722); its stable fixed point dies in a saddle-node at σ²_w=2.416 with "
        "χ₁=0.904; a stable critical point exists from bias_var ≈ 0.173 on"
    )


@pytest.mark.parametrize("distribution", ["orthogonal", "normal"])
def test_start_at_the_fixed_point_puts_the_first_layer_at_q_star_on_unit_inputs(distribution):
    """start=fixed_point: on inputs of unit second moment the first layer's pre-activations have second
    moment q* (tanh, σ²_b = 1e-6: q* = 0.00925), the rest of the net keeps σ²_w. The tolerance is four
    standard errors: the weights' own spread (a normal draw of 27 × 64 weights: √(2/1728) = 3.4 %; none
    for delta-orthogonal, whose centre tap has orthonormal columns) and the inputs' (√(2/N), N = 3 · 16 ·
    16 · 256 independent pixels, 0.4 %)."""
    torch.manual_seed(0)
    model = models.build("vanilla", depth=6, width=64, activation="tanh")
    report = inits.initialize(
        model, "critical", bias_var=1e-6, distribution=distribution, start="fixed_point"
    )
    q_star = 0.0092504
    x = torch.randn(256, 3, 32, 32)
    with torch.no_grad():
        h = model.conv1(x)
    stderr = (
        math.sqrt(2 / 1728 + 2 / (3 * 16 * 16 * 256)) if distribution == "normal" else math.sqrt(2 / 196608)
    )
    assert h.square().mean().item() == pytest.approx(q_star, rel=4 * stderr)
    assert report.set_by["conv1.weight"].endswith("scaled to start at q*=0.00925")
    centre = model.conv3.weight.detach()[:, :, 1, 1]
    if distribution == "orthogonal":
        torch.testing.assert_close(centre @ centre.T, 1.0182526 * torch.eye(64), atol=1e-5, rtol=0)


def test_the_critical_line_holds_where_the_length_map_converges_slowly():
    """At σ²_b = 1e-8 tanh's fixed point q* = 0.001965 attracts as slowly as 1 − 2q* a layer; χ₁ must
    still be 1 there to 1e-9, or 200 layers multiply the gradient by χ₁²⁰⁰ ≠ 1. Independent check: on the
    critical line σ²_w = 1/E[φ′²](q*) and σ²_b = q* − σ²_w E[φ²](q*), solved in q* by bisection."""
    from template.theory import fixed_points, meanfield

    phi = nn.Tanh()

    def bias_var_at(q):
        return q - float(meanfield.moment(phi, q)) / float(meanfield.moment(phi, q, derivative=True))

    low, high = 1e-6, 1.0
    for _ in range(100):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if bias_var_at(middle) < 1e-8 else (low, middle)
    q_star = math.sqrt(low * high)
    weight_var = fixed_points.critical_weight_var(phi, 1e-8)
    assert weight_var == pytest.approx(1 / float(meanfield.moment(phi, q_star, derivative=True)), rel=1e-9)
    assert fixed_points.fixed_point(phi, weight_var, 1e-8) == pytest.approx(q_star, rel=1e-6)
