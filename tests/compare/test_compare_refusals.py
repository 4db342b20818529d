"""`make compare` refuses bad input in one line, before any run starts and before anything is written:
empty, unknown or repeated compare.inits and compare.seeds, keys compare sets per run, unknown
overrides, and an override that is valid for one init of the list but not for another."""

import re

import pytest

from template import compare, config, inits
from template.__main__ import main
from template.errors import UsageError

KNOWN = ", ".join(inits.available())


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (
            "compare.inits=[]",
            "compare.inits=[] is empty; name one or more, e.g. compare.inits=[kaiming,glorot]",
        ),
        ("compare.inits=[kaiming,foo]", f"compare.inits='foo' is unknown; choose one of: {KNOWN}"),
        ("compare.inits=[kaiming,glorot,kaiming]", "compare.inits: kaiming named more than once"),
        ("compare.inits=kaiming", "compare.inits takes a list, e.g. compare.inits=[a,b]"),
        ("compare.seeds=[]", "compare.seeds=[] is empty; name one or more, e.g. compare.seeds=[0,1,2]"),
        (
            "compare.seeds=[0,x]",
            "bad value for compare.seeds[1]: Value 'x' of type 'str' could not be converted",
        ),
        ("compare.seeds=[-1]", "compare.seeds: -1 is negative; seeds are non-negative integers"),
        ("compare.seeds=[1,2,1]", "compare.seeds: 1 named more than once"),
    ],
)
def test_bad_inits_or_seeds_are_refused_in_one_line(tmp_path, argument, message):
    with pytest.raises(UsageError) as refused:
        compare.run([argument, f"runs_dir={tmp_path / 'runs'}"])
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
    assert not (tmp_path / "runs").exists()


def test_defaults_are_kaiming_against_glorot_seed_0_config_keys_like_any_other():
    assert list(config.load([]).compare.inits) == ["kaiming", "glorot"]
    assert list(config.load([]).compare.seeds) == [0]
    chosen = config.load(["compare.inits=[glorot, kaiming]", "compare.seeds=[2,0]"]).compare
    assert (list(chosen.inits), list(chosen.seeds)) == (["glorot", "kaiming"], [2, 0])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.depthh=3", "unknown config key 'model.depthh'"),
        ("experiment=nope", "experiment='nope' is unknown"),
        ("seed=3", "seed= cannot be given to compare: it sets seed for each run"),
        ("init=kaiming", "init= cannot be given to compare: it sets init for each run"),
        ("run_name=mine", "run_name= cannot be given to compare"),
        ("trainer.devices=2", "compare trains on one device (trainer.devices=2, trainer.num_nodes=1)"),
        # Valid for kaiming, not for glorot: found before the kaiming run starts.
        ("init.options.mode=fan_out", "glorot"),
    ],
)
def test_bad_overrides_are_refused_before_anything_is_written(tmp_path, override, message):
    runs = tmp_path / "runs"
    with pytest.raises(UsageError, match=re.escape(message)):
        compare.run([override, f"runs_dir={runs}", "data=synthetic"])
    assert not runs.exists()


def test_cli_prints_the_refusal_as_one_line_and_exits_2(tmp_path, capsys):
    """Through the command line's `main`, in this process: the real process around it is
    tests/test_train_cli.py's (`python -m template` exits with what `main` returns)."""
    assert main(["compare", "compare.inits=[foo]", f"runs_dir={tmp_path / 'runs'}"]) == 2
    printed = capsys.readouterr()
    assert printed.err == f"error: compare.inits='foo' is unknown; choose one of: {KNOWN}\n"
    assert printed.out == "" and not (tmp_path / "runs").exists()
