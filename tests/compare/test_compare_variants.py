"""`compare.variants`: an entry of compare.inits that names a variant runs that variant's overrides
instead of `init.name=<entry>`, so one comparison can set nets apart by more than the init's name (the
activation, the init's options) — `make compare EXPERIMENT=xiao2018` is one. Bad variants are refused in
one line before anything is written."""

import json

import pytest
from omegaconf import OmegaConf

from template import compare, config
from template.compare.comparison import _run_config
from template.errors import UsageError
from tests.helpers.tiny import tiny

TINY = tiny("data.synthetic_train_size=192", "data.batch_size=128", "trainer.max_epochs=1")
VARIANTS = "compare.variants={tanh_critical: [model.activation=tanh, init.name=critical], plain_relu: []}"


def test_each_variant_is_an_ordinary_run_of_its_own_overrides(tmp_path):
    runs = tmp_path / "runs"
    folder = compare.run(
        [*TINY, VARIANTS, "compare.inits=[tanh_critical,plain_relu,glorot]", f"runs_dir={runs}"]
    )
    found = json.loads((folder / "results.json").read_text())
    assert found["inits"] == ["tanh_critical", "plain_relu", "glorot"]
    saved = {}
    for label, result in found["results"].items():
        (run,) = result["runs"]
        assert run["status"] == "completed", label
        saved[label] = OmegaConf.load(runs / run["run_dir"] / "config.yaml")
    assert (saved["tanh_critical"].model.activation, saved["tanh_critical"].init.name) == ("tanh", "critical")
    assert (saved["plain_relu"].model.activation, saved["plain_relu"].init.name) == ("relu", "kaiming")
    assert (saved["glorot"].model.activation, saved["glorot"].init.name) == ("relu", "glorot")


def test_xiao2018_compares_its_three_nets():
    """docs/theory.md's figure: delta-orthogonal and Gaussian tanh on the critical line, and Kaiming + ReLU,
    each with everything else of the experiment."""
    base = config.load(["experiment=xiao2018"])
    made = {
        label: _run_config("x", ["experiment=xiao2018"], label, 0, base.compare.variants)
        for label in base.compare.inits
    }
    orthogonal, gaussian, relu = (
        made[k] for k in ("critical_orthogonal", "critical_gaussian", "kaiming_relu")
    )
    assert (orthogonal.init.name, orthogonal.init.options.distribution, orthogonal.model.activation) == (
        "critical", "orthogonal", "tanh",
    )  # fmt: skip
    assert OmegaConf.to_container(gaussian.init.options) == {
        **OmegaConf.to_container(orthogonal.init.options), "distribution": "normal",
    }  # fmt: skip
    assert (relu.init.name, dict(relu.init.options), relu.model.activation) == ("kaiming", {}, "relu")
    assert {c.model.depth for c in made.values()} == {200} and {c.optimizer.name for c in made.values()} == {
        "adamw"
    }


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        (
            "compare.variants={a: [seed=3]}",
            "compare.variants.a sets seed, which compare sets for each run; a variant may set any key but "
            "seed, run_name and resume",
        ),
        ("compare.variants={a: [model.depthh=3]}", "unknown config key 'model.depthh'"),
        (
            "compare.variants={'a b': []}",
            "compare.variants: 'a b' is not a usable label (it names run folders)",
        ),
    ],
)
def test_bad_variants_are_refused_before_anything_is_written(tmp_path, variants, message):
    runs = tmp_path / "runs"
    inits = "compare.inits=[kaiming]" if "a b" in variants else "compare.inits=[a,kaiming]"
    with pytest.raises(UsageError) as refused:
        compare.run([*TINY, variants, inits, f"runs_dir={runs}"])
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
    assert not runs.exists()


def test_an_unknown_entry_lists_the_variants_among_the_choices(tmp_path):
    with pytest.raises(UsageError, match=r"compare.inits='b' is unknown; choose one of: .*glorot.*, a$"):
        compare.run([*TINY, "compare.variants={a: []}", "compare.inits=[b]", f"runs_dir={tmp_path}"])
