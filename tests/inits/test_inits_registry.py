"""The registry's contract: names and aliases, one-line refusals, the report, seeding, `register`, and
that a torch name means torch's function bit for bit."""

import copy
import json

import pytest
import torch
from torch import nn

from template import inits
from template.errors import UsageError
from template.inits import registry

CANONICAL = [
    # torch.nn.init
    "pytorch_default", "kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal", "orthogonal",
    "dirac", "sparse", "trunc_normal", "uniform", "normal", "zeros", "ones",
    # Keras
    "variance_scaling", "glorot_uniform", "glorot_normal", "he_normal", "lecun_normal", "lecun_uniform",
    "identity",
    # JAX / timm
    "delta_orthogonal", "trunc_normal_tf",
    # data-dependent, architecture-aware
    "lsuv", "fixup", "zero_init_residual", "critical", "meanfield", "tat", "dks",
]  # fmt: skip
ALIASES = {"kaiming": "kaiming_uniform", "he_uniform": "kaiming_uniform", "glorot": "glorot_uniform"}
PER_LAYER = [
    n
    for n in CANONICAL
    if n not in ("lsuv", "fixup", "zero_init_residual", "critical", "meanfield", "tat", "dks")
]


def small_model():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 10)
    )


def test_available_lists_every_canonical_name_and_alias_sorted():
    assert inits.available() == sorted(CANONICAL + list(ALIASES))


def test_table_has_one_complete_row_per_scheme():
    rows = inits.table()
    assert [r["name"] for r in rows] == CANONICAL
    for row in rows:
        assert set(row) == {"name", "aliases", "convention", "formula"}
        assert row["convention"] and row["formula"]
    aliases = {a: r["name"] for r in rows for a in r["aliases"]}
    assert aliases == ALIASES


@pytest.mark.parametrize("alias, canonical", ALIASES.items())
def test_an_alias_runs_its_canonical_scheme(alias, canonical):
    assert inits.initialize(nn.Linear(3, 2), alias).scheme == canonical


@pytest.mark.parametrize(
    "name, options, message",
    [
        (
            "foo",
            {},
            "init.name='foo' is unknown; choose one of: " + ", ".join(sorted(CANONICAL + list(ALIASES))),
        ),
        (
            "kaiming",
            {"foo": 1},
            "init.options.foo is not an option of kaiming_uniform; valid options: a, mode, nonlinearity",
        ),
        (
            "kaiming_uniform",
            {"mode": "fan_xx"},
            "init.options.mode='fan_xx' is not valid for kaiming_uniform; choose one of: fan_in, fan_out",
        ),
        (
            "kaiming_normal",
            {"nonlinearity": "gelu"},
            "init.options.nonlinearity='gelu' is not valid for kaiming_normal; choose one of: linear, "
            "conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d, sigmoid, tanh, "
            "relu, leaky_relu, selu",
        ),
        (
            "variance_scaling",
            {"distribution": "normal"},  # ambiguous between Keras and JAX: refused
            "init.options.distribution='normal' is not valid for variance_scaling; "
            "choose one of: truncated_normal, untruncated_normal, uniform",
        ),
        (
            "variance_scaling",
            {"mode": "fan_geo"},
            "init.options.mode='fan_geo' is not valid for variance_scaling; "
            "choose one of: fan_in, fan_out, fan_avg, fan_geo_avg",
        ),
        (
            "xavier_uniform",
            {"gain": "big"},
            "init.options.gain='big' is not valid for xavier_uniform; expected a number",
        ),
        (
            "xavier_uniform",
            {"gain": True},
            "init.options.gain=True is not valid for xavier_uniform; expected a number",
        ),
        ("normal", {"std": float("nan")}, "init.options.std=nan is not valid for normal; expected a number"),
        ("normal", {"std": -1}, "init.options.std=-1 is not valid for normal; expected a positive number"),
        (
            "sparse",
            {"sparsity": 1.5},
            "init.options.sparsity=1.5 is not valid for sparse; expected a number in [0, 1]",
        ),
        ("lsuv", {"max_iters": 2.5}, "init.options.max_iters=2.5 is not valid for lsuv; expected an integer"),
        (
            "lsuv",
            {"max_iters": 0},
            "init.options.max_iters=0 is not valid for lsuv; expected a positive integer",
        ),
        ("zeros", {"gain": 1}, "init.options.gain is not an option of zeros; valid options: (none)"),
        (
            "fixup",
            {"mode": "fan_avg"},
            "init.options.mode='fan_avg' is not valid for fixup; choose one of: fan_in, fan_out",
        ),
    ],
)
def test_bad_names_and_options_are_refused_in_one_line_before_any_work(name, options, message):
    with pytest.raises(UsageError) as error:
        inits.check_options(name, options)
    assert str(error.value) == message
    model = small_model()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(UsageError) as error:
        inits.initialize(model, name, **options)
    assert str(error.value) == message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_good_options_pass_and_integers_count_as_numbers():
    inits.check_options("variance_scaling", {"scale": 2, "mode": "fan_geo_avg", "distribution": "uniform"})
    inits.check_options("kaiming", {"a": 0, "mode": "fan_out", "nonlinearity": "relu"})
    inits.check_options("lsuv", {"tol": 0.05, "max_iters": 3})


def test_only_lsuv_needs_a_batch_and_says_so():
    assert [n for n in CANONICAL if inits.needs_batch(n)] == ["lsuv"]
    with pytest.raises(UsageError, match="^init lsuv is data-dependent: pass batch="):
        inits.initialize(small_model(), "lsuv")


def test_report_names_what_set_each_parameter_and_what_was_left_alone():
    report = inits.initialize(small_model(), "kaiming", mode="fan_out")
    assert report.scheme == "kaiming_uniform"
    assert report.set_by == {
        "0.weight": "kaiming_uniform",
        "0.bias": "zeros (bias)",
        "4.weight": "kaiming_uniform",
        "4.bias": "zeros (bias)",
    }
    assert report.untouched == ["1.weight", "1.bias"]  # BatchNorm: the framework's γ = 1, β = 0
    assert json.loads(json.dumps(report.as_dict())) == {
        "scheme": "kaiming_uniform",
        "set_by": report.set_by,
        "untouched": report.untouched,
    }


def _seeded_state(name, seed):
    torch.manual_seed(seed)
    model = small_model()
    torch.manual_seed(seed)
    inits.initialize(model, name, batch=torch.randn(8, 3, 8, 8))
    return model.state_dict()


@pytest.mark.parametrize("name", PER_LAYER + ["lsuv"])
def test_same_seed_same_weights(name):
    a, b = _seeded_state(name, 0), _seeded_state(name, 0)
    assert all(torch.equal(a[k], b[k]) for k in a)
    if name not in ("zeros", "ones", "dirac", "identity"):
        c = _seeded_state(name, 1)
        assert not torch.equal(a["0.weight"], c["0.weight"])


TORCH_EQUIVALENTS = [
    (
        "kaiming_uniform",
        {"a": 0.1, "mode": "fan_out"},
        lambda w: nn.init.kaiming_uniform_(w, a=0.1, mode="fan_out"),
    ),
    ("kaiming_normal", {"nonlinearity": "relu"}, lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")),
    ("xavier_uniform", {"gain": 2.0}, lambda w: nn.init.xavier_uniform_(w, gain=2.0)),
    ("xavier_normal", {}, nn.init.xavier_normal_),
    ("orthogonal", {"gain": 0.5}, lambda w: nn.init.orthogonal_(w, gain=0.5)),
    ("trunc_normal", {"std": 0.02}, lambda w: nn.init.trunc_normal_(w, std=0.02)),
    ("uniform", {}, nn.init.uniform_),
    ("normal", {"std": 0.3}, lambda w: nn.init.normal_(w, std=0.3)),
]


@pytest.mark.parametrize(
    "make", [lambda: nn.Conv2d(6, 8, 3), lambda: nn.Linear(20, 7)], ids=["conv", "linear"]
)
@pytest.mark.parametrize(
    "name, options, torch_init", TORCH_EQUIVALENTS, ids=lambda v: v if isinstance(v, str) else ""
)
def test_a_torch_name_is_torchs_function_bit_for_bit(make, name, options, torch_init):
    expected, actual = make(), make()
    torch.manual_seed(3)
    torch_init(expected.weight)
    torch.manual_seed(3)
    inits.initialize(actual, name, **options)
    assert torch.equal(expected.weight, actual.weight)


def test_pytorch_default_is_what_constructing_the_module_does():
    torch.manual_seed(5)
    fresh = nn.Conv2d(6, 8, 3)
    model = nn.Conv2d(6, 8, 3)
    torch.manual_seed(5)
    inits.initialize(model, "pytorch_default")
    assert torch.equal(fresh.weight, model.weight) and torch.equal(fresh.bias, model.bias)


def test_register_adds_a_scheme_with_validated_options(monkeypatch):
    monkeypatch.setattr(registry, "_NAMES", dict(registry._NAMES))  # leave the real registry as it was

    @inits.register("constant", aliases=("const",), convention="test", formula="W = value")
    def constant(layer: inits.Layer, *, value: registry.Positive = 0.5) -> str:
        layer.weight.fill_(value)
        return "constant (bias untouched)"

    assert {"constant", "const"} <= set(inits.available())
    assert inits.table()[-1] == {
        "name": "constant",
        "aliases": ["const"],
        "convention": "test",
        "formula": "W = value",
    }
    linear = nn.Linear(3, 2)
    report = inits.initialize(linear, "const", value=2.0)
    assert (linear.weight == 2.0).all() and report.set_by == {
        "weight": "constant",
        "bias": "constant (bias untouched)",
    }
    with pytest.raises(
        UsageError, match=r"^init.options.value=-1 is not valid for constant; expected a positive"
    ):
        inits.check_options("constant", {"value": -1})
    with pytest.raises(ValueError, match="'const' is already registered"):
        inits.register("other", aliases=("const",))(constant)
    with pytest.raises(TypeError, match="first parameter must be `layer` or `model`"):
        inits.register("bad")(lambda weight: None)
    with pytest.raises(TypeError, match="option 'value' must be keyword-only, typed, defaulted"):
        inits.register("bad")(lambda layer, value=1.0: None)

    def text_option(layer: inits.Layer, *, value: str = "x") -> None: ...

    with pytest.raises(TypeError, match="option 'value' must be a float, int or Literal"):
        inits.register("bad")(text_option)
