"""`make compare` refuses bad input in one line, before any run starts and before anything is written:
empty, unknown or repeated inits and seeds, keys compare sets per run, unknown overrides, and an
override that is valid for one init of the list but not for another."""

import re
import subprocess
import sys

import pytest

from template import compare, inits
from template.errors import UsageError

KNOWN = ", ".join(inits.available())


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("inits=", f"inits='' is empty; name one or more of: {KNOWN}"),
        ("inits= , ", f"inits=' , ' is empty; name one or more of: {KNOWN}"),
        ("inits=kaiming,foo", f"inits: 'foo' is unknown; choose from: {KNOWN}"),
        ("inits=kaiming,glorot,kaiming", "inits: kaiming named more than once"),
        ("seeds=", "seeds='' is empty; name one or more seeds, e.g. seeds=0,1,2"),
        ("seeds=0,x", "seeds: 'x' is not a non-negative integer; e.g. seeds=0,1,2"),
        ("seeds=-1", "seeds: '-1' is not a non-negative integer; e.g. seeds=0,1,2"),
        ("seeds=1,2,1", "seeds: 1 named more than once"),
    ],
)
def test_bad_inits_or_seeds_are_refused_in_one_line(argument, message):
    with pytest.raises(UsageError) as refused:
        compare.parse([argument])
    assert str(refused.value) == message


def test_defaults_are_kaiming_against_glorot_seed_0_and_other_overrides_pass_through():
    assert compare.parse(["model.depth=30", "experiment=quick_demo"]) == (
        ["kaiming", "glorot"],
        [0],
        ["model.depth=30", "experiment=quick_demo"],
    )
    assert compare.parse(["inits=glorot, kaiming", "seeds=2,0"])[:2] == (["glorot", "kaiming"], [2, 0])


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
        compare.run(["kaiming", "glorot"], [0], [override, f"runs_dir={runs}", "data=synthetic"])
    assert not runs.exists()


def test_cli_prints_the_refusal_as_one_line_and_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "template", "compare", "inits=foo", f"runs_dir={tmp_path / 'runs'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == f"error: inits: 'foo' is unknown; choose from: {KNOWN}\n"
    assert not (tmp_path / "runs").exists()
