"""Fans, and the schemes whose promise is a structure rather than a distribution: orthogonal,
delta-orthogonal, dirac/identity. Where a structure has a functional meaning (dirac passes its input
through, delta-orthogonal preserves norms, the right fan_in keeps unit variance) the test runs the layer.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from template import inits
from template.errors import UsageError
from template.inits.fans import Layer


@pytest.mark.parametrize(
    "module, fan_in, fan_out",
    [
        (nn.Linear(7, 5), 7, 5),
        (nn.Conv1d(3, 8, 5), 3 * 5, 8 * 5),
        (nn.Conv2d(3, 8, (3, 5)), 3 * 15, 8 * 15),
        (nn.Conv3d(2, 4, 3), 2 * 27, 4 * 27),
        (nn.Conv2d(3, 8, 3, stride=2, dilation=2), 3 * 9, 8 * 9),  # stride, dilation ignored
        (nn.Conv2d(8, 16, 3, groups=4), 2 * 9, 16 * 9),  # fan_in c_in/groups·k²; fan_out c_out·k²
        (nn.Conv2d(8, 8, 3, groups=8), 1 * 9, 8 * 9),  # depthwise
        (nn.ConvTranspose1d(6, 4, 3), 6 * 3, 4 * 3),
        (nn.ConvTranspose2d(8, 6, 3), 8 * 9, 6 * 9),
        (nn.ConvTranspose3d(2, 3, 2), 2 * 8, 3 * 8),
        (nn.ConvTranspose2d(8, 12, 3, groups=4), 2 * 9, 12 * 9),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else str(v),
)
def test_fans_are_exact(module, fan_in, fan_out):
    layer = Layer("", module)
    assert (layer.fan_in, layer.fan_out) == (fan_in, fan_out)
    assert layer.fan("fan_avg") == (fan_in + fan_out) / 2
    assert layer.fan("fan_geo_avg") == pytest.approx(math.sqrt(fan_in * fan_out))
    if not layer.transposed:  # torch agrees on forward layers and swaps on transposed ones
        assert nn.init._calculate_fan_in_and_fan_out(module.weight) == (fan_in, fan_out)


def test_torch_itself_swaps_the_fans_of_a_transposed_conv():
    """The reason fans.py exists: torch reads fan_in off dim 1 of (c_in, c_out/groups, k, k)."""
    assert nn.init._calculate_fan_in_and_fan_out(nn.ConvTranspose2d(8, 6, 3).weight) == (6 * 9, 8 * 9)


@pytest.mark.parametrize("groups", [1, 4])
def test_forward_layout_round_trips_and_maps_channels(groups):
    """Entry [o, i] of the forward-layout weight must be what connects input channel i (of o's
    group) to output channel o; written via `init_weight`, it must land in torch's raw layout there."""
    module = nn.ConvTranspose2d(8, 12, 3, groups=groups)
    layer = Layer("", module)
    c_out, c_in_g = layer.shape[:2]
    code = torch.arange(c_out).view(-1, 1, 1, 1) * 100 + torch.arange(c_in_g).view(1, -1, 1, 1)
    layer.init_weight(lambda w: w.copy_(code.expand_as(w).float()))
    c_out_g = c_out // groups
    for o in range(c_out):
        for i in range(c_in_g):
            g = o // c_out_g
            assert module.weight[g * c_in_g + i, o % c_out_g, 0, 0] == o * 100 + i


def test_transposed_conv_keeps_unit_variance_with_its_real_fan_in():
    """Kaiming (linear gain, fan_in) must map unit-variance inputs to unit-variance outputs. With
    torch's swapped fan this layer (c_in = 64, c_out = 16) would give variance 4."""
    torch.manual_seed(0)
    conv = nn.ConvTranspose2d(64, 16, 3, padding=1)
    inits.initialize(conv, "kaiming_normal", nonlinearity="linear")
    y = conv(torch.randn(64, 64, 12, 12))[:, :, 2:-2, 2:-2]  # interior: every output sees all 9 taps
    assert y.var().item() == pytest.approx(1.0, rel=0.05)


def _gram_is(w: torch.Tensor, gain: float):
    matrix = w.detach().reshape(w.shape[0], -1).double()
    gram = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
    assert torch.allclose(gram, gain**2 * torch.eye(len(gram), dtype=torch.double), atol=1e-5)


@pytest.mark.parametrize(
    "module",
    [nn.Linear(64, 128), nn.Linear(128, 64), nn.Conv2d(16, 32, 3), nn.Conv2d(4, 64, 3), nn.Conv1d(8, 8, 5)],
    ids=repr,
)
def test_orthogonal_gives_w_wt_equal_gain_squared_identity(module):
    torch.manual_seed(0)
    inits.initialize(module, "orthogonal", gain=1.3)
    _gram_is(module.weight, 1.3)


def test_orthogonal_on_a_transposed_conv_is_orthogonal_in_forward_layout():
    torch.manual_seed(0)
    conv = nn.ConvTranspose2d(32, 16, 3)
    inits.initialize(conv, "orthogonal", gain=0.5)
    _gram_is(conv.weight.transpose(0, 1), 0.5)


@pytest.mark.parametrize(
    "module, centre",
    [
        (nn.Conv2d(16, 32, 3, padding=1), (1, 1)),
        (nn.Conv1d(8, 8, 4, padding="same"), (1,)),  # even kernel: JAX's (k-1)//2
        (nn.Conv3d(4, 6, 3, padding=1), (1, 1, 1)),
        (nn.Conv2d(8, 16, 3, padding=1, groups=2), (1, 1)),
        (nn.ConvTranspose2d(8, 16, 3, padding=1), (1, 1)),
    ],
    ids=repr,
)
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_delta_orthogonal_is_an_orthogonal_centre_tap_and_zero_elsewhere(module, centre):
    torch.manual_seed(0)
    inits.initialize(module, "delta_orthogonal", scale=1.5)
    w = module.weight.detach()
    if isinstance(module, nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    tap = w[(slice(None), slice(None), *centre)].double()
    assert torch.allclose(tap.T @ tap, 2.25 * torch.eye(tap.shape[1], dtype=torch.double), atol=1e-5)
    rest = w.clone()
    rest[(slice(None), slice(None), *centre)] = 0
    assert (rest == 0).all()
    if not isinstance(module, nn.ConvTranspose2d) and module.groups == 1:  # norm preserved exactly
        x = torch.randn(3, module.in_channels, *([6] * len(centre)))
        assert module(x).norm().item() == pytest.approx(1.5 * x.norm().item(), rel=1e-5)


def test_delta_orthogonal_refuses_a_narrowing_conv_and_orthogonalises_linears():
    with pytest.raises(UsageError) as error:
        inits.initialize(nn.Sequential(nn.Conv2d(32, 16, 3)), "delta_orthogonal")
    assert str(error.value) == (
        "delta_orthogonal needs c_out >= c_in/groups in every conv; layer '0' has c_out=16, c_in/groups=32"
    )
    linear = nn.Linear(64, 10)
    inits.initialize(linear, "delta_orthogonal")
    _gram_is(linear.weight, 1.0)


@pytest.mark.parametrize(
    "module",
    [
        nn.Conv1d(6, 6, 3, padding=1),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.Conv3d(6, 6, 3, padding=1),
        nn.Conv2d(6, 6, 3, padding=1, groups=3),
        nn.ConvTranspose2d(6, 6, 3, padding=1),
        nn.ConvTranspose2d(6, 6, 3, padding=1, groups=2),
    ],
    ids=repr,
)
@pytest.mark.parametrize("name, gain", [("dirac", 1.0), ("identity", 2.5)])
def test_dirac_and_identity_pass_the_input_through(module, name, gain):
    options = {"gain": gain} if name == "identity" else {}
    inits.initialize(module, name, **options)
    x = torch.randn(2, 6, *([5] * (module.weight.dim() - 2)))
    assert torch.allclose(module(x), gain * x, atol=1e-6)


@pytest.mark.parametrize("name, gain", [("dirac", 1.0), ("identity", 0.5)])
def test_dirac_and_identity_on_a_linear_are_the_identity_matrix(name, gain):
    linear = nn.Linear(5, 3)
    inits.initialize(linear, name, **({"gain": gain} if name == "identity" else {}))
    assert torch.equal(linear.weight, gain * torch.eye(3, 5))


@pytest.mark.parametrize("name, value", [("zeros", 0.0), ("ones", 1.0)])
def test_constant_schemes(name, value):
    conv = nn.ConvTranspose2d(4, 6, 3, groups=2)
    inits.initialize(conv, name)
    assert (conv.weight == value).all()
    assert (conv.bias == 0).all()


def test_a_lazy_layer_is_refused_until_it_has_a_weight():
    model = nn.Sequential(nn.LazyLinear(4))
    with pytest.raises(UsageError) as error:
        inits.initialize(model, "kaiming")
    assert str(error.value) == "layer '0' is lazy and has no weight yet; run one forward pass before init"
    model(torch.randn(2, 3))
    assert inits.initialize(model, "kaiming").set_by["0.weight"] == "kaiming_uniform"


@settings(max_examples=60, deadline=None, database=None)
@given(
    dims=st.integers(1, 3),
    kernel=st.integers(1, 4),
    groups=st.integers(1, 3),
    c_in_per_group=st.integers(1, 4),
    c_out_per_group=st.integers(1, 4),
    transposed=st.booleans(),
)
def test_fans_are_torchs_on_the_equivalent_forward_conv(
    dims, kernel, groups, c_in_per_group, c_out_per_group, transposed
):
    """Any conv, transposed or not: the fans are torch's for the forward conv c_in -> c_out, and the
    forward-layout view writes back exactly what it read."""
    conv_type = [nn.Conv1d, nn.Conv2d, nn.Conv3d][dims - 1]
    if transposed:
        conv_type = [nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d][dims - 1]
    c_in, c_out = c_in_per_group * groups, c_out_per_group * groups
    layer = Layer("", conv_type(c_in, c_out, kernel, groups=groups))
    forward = nn.Conv1d, nn.Conv2d, nn.Conv3d
    equivalent = forward[dims - 1](c_in, c_out, kernel, groups=groups).weight
    assert layer.shape == equivalent.shape
    assert (layer.fan_in, layer.fan_out) == nn.init._calculate_fan_in_and_fan_out(equivalent)
    before = layer.weight.detach().clone()
    layer.init_weight(lambda w: w.mul_(1.0))
    assert torch.equal(layer.weight, before)
