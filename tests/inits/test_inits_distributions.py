"""Every distributional scheme against its formula, the way PyTorch tests torch.nn.init: a
Kolmogorov-Smirnov test (scipy) of ≥ 10⁴ drawn weights against the distribution the formula names,
p > 1e-4, on Linear, conv, grouped-conv and transposed-conv shapes, both fan modes where they exist.

The expected distributions are written out here from the libraries' documented formulas and the fans
stated next to each shape — not computed with the package's own fan code — so a wrong fan axis (the
ConvTranspose swap) or a missing truncation correction fails the test.
"""

import math
import zlib

import pytest
import torch
from scipy import stats
from torch import nn

from template import inits

P_MIN = 1e-4
TRUNC = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]

# name -> (layer factory, fan_in, fan_out), fans by hand: fan_in = c_in/groups·k², fan_out = c_out·k²
SHAPES = {
    "linear": (lambda: nn.Linear(300, 100), 300, 100),
    "conv2d": (lambda: nn.Conv2d(32, 64, 3), 32 * 9, 64 * 9),
    "grouped": (lambda: nn.Conv2d(64, 128, 3, groups=4), 16 * 9, 128 * 9),
    "transposed": (lambda: nn.ConvTranspose2d(16, 48, 5), 16 * 25, 48 * 25),
}


def uniform_pm(bound):
    return stats.uniform(loc=-bound, scale=2 * bound)


def keras_truncated(std):
    """Keras/JAX: the parent normal has std/0.8796 and is cut at ±2 of its own σ."""
    return stats.truncnorm(-2, 2, loc=0, scale=std / TRUNC)


def _avg(fi, fo):
    return (fi + fo) / 2


VARIANCE_SCALING_N = {
    "fan_in": lambda fi, fo: fi,
    "fan_out": lambda fi, fo: fo,
    "fan_avg": _avg,
    "fan_geo_avg": lambda fi, fo: math.sqrt(fi * fo),
}


def _variance_scaling(scale, mode, distribution):
    def expected(fi, fo):
        variance = scale / VARIANCE_SCALING_N[mode](fi, fo)
        if distribution == "truncated_normal":
            return keras_truncated(math.sqrt(variance))
        if distribution == "untruncated_normal":
            return stats.norm(0, math.sqrt(variance))
        return uniform_pm(math.sqrt(3 * variance))

    return expected


# (scheme, options, expected distribution as a function of (fan_in, fan_out))
CASES = [
    ("kaiming_uniform", {}, lambda fi, fo: uniform_pm(math.sqrt(6 / fi))),
    ("kaiming_uniform", {"mode": "fan_out"}, lambda fi, fo: uniform_pm(math.sqrt(6 / fo))),
    ("kaiming", {"a": 0.2}, lambda fi, fo: uniform_pm(math.sqrt(2 / 1.04) * math.sqrt(3 / fi))),
    (
        "he_uniform",
        {"nonlinearity": "tanh", "mode": "fan_out"},
        lambda fi, fo: uniform_pm(5 / 3 * math.sqrt(3 / fo)),
    ),
    ("kaiming_normal", {}, lambda fi, fo: stats.norm(0, math.sqrt(2 / fi))),
    (
        "kaiming_normal",
        {"mode": "fan_out", "nonlinearity": "relu"},
        lambda fi, fo: stats.norm(0, math.sqrt(2 / fo)),
    ),
    ("kaiming_normal", {"nonlinearity": "linear"}, lambda fi, fo: stats.norm(0, math.sqrt(1 / fi))),
    ("xavier_uniform", {}, lambda fi, fo: uniform_pm(math.sqrt(6 / (fi + fo)))),
    ("xavier_uniform", {"gain": 2.0}, lambda fi, fo: uniform_pm(2 * math.sqrt(6 / (fi + fo)))),
    ("xavier_normal", {"gain": 1.5}, lambda fi, fo: stats.norm(0, 1.5 * math.sqrt(2 / (fi + fo)))),
    # torch: absolute bounds
    (
        "trunc_normal",
        {"mean": 0.01, "std": 0.05, "a": -0.06, "b": 0.1},
        lambda fi, fo: stats.truncnorm((-0.06 - 0.01) / 0.05, (0.1 - 0.01) / 0.05, loc=0.01, scale=0.05),
    ),
    ("uniform", {"a": -0.3, "b": 0.1}, lambda fi, fo: stats.uniform(loc=-0.3, scale=0.4)),
    ("normal", {"mean": 0.1, "std": 0.02}, lambda fi, fo: stats.norm(0.1, 0.02)),
    ("glorot_uniform", {}, lambda fi, fo: uniform_pm(math.sqrt(6 / (fi + fo)))),
    ("glorot", {}, lambda fi, fo: uniform_pm(math.sqrt(6 / (fi + fo)))),
    ("glorot_normal", {}, lambda fi, fo: keras_truncated(math.sqrt(2 / (fi + fo)))),
    ("he_normal", {}, lambda fi, fo: keras_truncated(math.sqrt(2 / fi))),
    ("lecun_normal", {}, lambda fi, fo: keras_truncated(math.sqrt(1 / fi))),
    ("lecun_uniform", {}, lambda fi, fo: uniform_pm(math.sqrt(3 / fi))),
    # timm: bounds in units of std around the mean
    (
        "trunc_normal_tf",
        {"mean": 0.01, "std": 0.02, "a": -1.5, "b": 2.5},
        lambda fi, fo: stats.truncnorm(-1.5, 2.5, loc=0.01, scale=0.02),
    ),
    *[
        ("variance_scaling", {"scale": 1.7, "mode": m, "distribution": d}, _variance_scaling(1.7, m, d))
        for m in VARIANCE_SCALING_N
        for d in ("truncated_normal", "untruncated_normal", "uniform")
    ],
]


def case_id(case):
    name, options, _ = case
    return name + "".join(f"-{k}={v}" for k, v in options.items())


def draw(name, options, make_layer, seed):
    torch.manual_seed(seed)
    layer = make_layer()
    inits.initialize(layer, name, **options)
    return layer.weight.detach().double().flatten().numpy()


def ks_pvalue(samples, distribution) -> float:
    return stats.kstest(samples, distribution.cdf).pvalue


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_scheme_matches_its_formula(case, shape):
    name, options, expected = case
    make_layer, fan_in, fan_out = SHAPES[shape]
    samples = draw(name, options, make_layer, seed=zlib.crc32(f"{case_id(case)}-{shape}".encode()))
    assert samples.size >= 10_000
    assert ks_pvalue(samples, expected(fan_in, fan_out)) > P_MIN


def test_the_keras_correction_is_the_std_of_a_truncated_unit_normal():
    assert stats.truncnorm(-2, 2).std() == pytest.approx(TRUNC, abs=1e-15)


@pytest.mark.parametrize("shape", ["linear", "conv2d", "grouped"])
def test_pytorch_default_weight_is_uniform_one_over_sqrt_fan_in(shape):
    make_layer, fan_in, _ = SHAPES[shape]
    assert (
        ks_pvalue(draw("pytorch_default", {}, make_layer, seed=1), uniform_pm(1 / math.sqrt(fan_in))) > P_MIN
    )


def test_pytorch_default_keeps_torchs_raw_fan_for_conv_transpose():
    """torch's own default reads fan_in off the raw (c_in, c_out/groups, k, k) weight: c_out·k²."""
    make_layer, _, fan_out = SHAPES["transposed"]
    assert (
        ks_pvalue(draw("pytorch_default", {}, make_layer, seed=1), uniform_pm(1 / math.sqrt(fan_out))) > P_MIN
    )


def test_pytorch_default_bias_is_uniform_one_over_sqrt_fan_in():
    torch.manual_seed(0)
    layer = nn.Linear(20, 12_000)
    inits.initialize(layer, "pytorch_default")
    samples = layer.bias.detach().double().numpy()
    assert ks_pvalue(samples, uniform_pm(1 / math.sqrt(20))) > P_MIN


@pytest.mark.parametrize("shape", SHAPES)
def test_sparse_zeros_a_fraction_of_each_column_and_draws_the_rest_normal(shape):
    make_layer, *_ = SHAPES[shape]
    torch.manual_seed(0)
    layer = make_layer()
    inits.initialize(layer, "sparse", sparsity=0.3, std=0.05)
    matrix = inits.Layer("", layer).shape  # forward-conv layout: (c_out, c_in/groups, k...)
    w = layer.weight.detach()
    if isinstance(layer, nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    columns = w.reshape(matrix[0], -1)
    assert ((columns == 0).sum(0) == math.ceil(0.3 * matrix[0])).all()
    nonzero = columns[columns != 0].double().numpy()
    assert nonzero.size >= 10_000
    assert ks_pvalue(nonzero, stats.norm(0, 0.05)) > P_MIN


@pytest.mark.parametrize("case", CASES[:2], ids=case_id)
def test_the_test_has_power(case):
    """The same draws fail against the neighbouring hypothesis (the other fan), so a pass means something."""
    name, options, expected = case
    make_layer, fan_in, fan_out = SHAPES["conv2d"]
    samples = draw(name, options, make_layer, seed=0)
    assert ks_pvalue(samples, expected(fan_out, fan_in)) < P_MIN


def test_biases_start_at_zero_except_under_pytorch_default():
    torch.manual_seed(0)
    for name in ("kaiming", "he_normal", "trunc_normal_tf", "orthogonal", "dirac", "delta_orthogonal"):
        layer = nn.Conv2d(4, 8, 3)
        report = inits.initialize(layer, name)
        assert (layer.bias == 0).all()
        assert report.set_by["bias"] == "zeros (bias)"
    layer = nn.Linear(4, 100)
    report = inits.initialize(layer, "pytorch_default")
    assert (layer.bias != 0).all()
    assert report.set_by["bias"] == "pytorch_default (bias)"
