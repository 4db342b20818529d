"""The command line says what it takes and what it runs: `--help` on every command, and before fit one
short block (run folder, changed keys, model, device and precision, the W&B run), with none of the
libraries' warnings in a default run's output."""

import os
import re
import subprocess
import sys

import pytest

from template import config, data, inits, models
from template.__main__ import ABOUT, main
from template.run import loggers

PACKAGE = config.__name__.split(".")[0]
REPO = config.CONFIGS_DIR.parent


def cli(*args, cwd=None, timeout=300):
    env = {key: value for key, value in os.environ.items() if key != "TEMPLATE_RUN_DIR"}
    return subprocess.run(
        [sys.executable, "-m", PACKAGE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.parametrize("command", sorted(set(ABOUT) - {"inits"}))
def test_help_prints_the_commented_defaults_and_every_registrys_choices(command, capsys):
    """In-process, through the `main` the command line runs (a real process is the next test's)."""
    assert main([command, "--help"]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    _check_help(command, printed.out)


def test_help_through_a_real_process():
    result = cli("train", "--help")
    assert result.returncode == 0 and result.stderr == ""
    _check_help("train", result.stdout)


def _check_help(command: str, text: str) -> None:
    assert text.startswith(f"usage: python -m {PACKAGE} {command} [key=value ...]\n{ABOUT[command]}\n")
    assert (config.CONFIGS_DIR / "default.yaml").read_text().rstrip() in text  # every key, commented
    choices = {
        "init.name": inits.available(),
        "model.name": models.available(),
        "data.name": data.available(),
        "logger.name": loggers.available(),
    }
    for key, names in choices.items():
        assert re.search(rf"^  {re.escape(key)} +{re.escape(', '.join(names))}$", text, re.M), key


def test_help_of_inits_and_of_the_whole_cli():
    assert cli("inits", "--help").stdout.startswith(f"usage: python -m {PACKAGE} inits\n")
    overall = cli("--help").stdout
    assert all(f"  {name:<10}{about}" in overall for name, about in ABOUT.items())


def test_choices_come_from_the_registries():
    """A data set added to the registry is a valid data.name at once: there is no second list."""
    choices = config.registry_choices()
    assert choices["data.name"] == list(data.DATASETS) and choices["logger.name"] == list(loggers.LOGGERS)
    assert choices["model.name"] == models.available() and choices["init.name"] == inits.available()
    assert "data.name" not in config.CHOICES and "logger.name" not in config.CHOICES


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """A run with the defaults a user gets (W&B offline, two loader workers, cosine schedule), on the
    synthetic set made small enough for seconds."""
    tmp_path = tmp_path_factory.mktemp("default")
    keys = [
        "data=synthetic",
        "data.synthetic_train_size=1600",
        "trainer.max_epochs=1",
        f"runs_dir={tmp_path}",
    ]
    result = cli("train", *keys, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    return result, run_dir, keys


def test_the_run_says_what_it_runs_before_fit(default_run):
    result, run_dir, keys = default_run
    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    run_id = wandb_run.name.rsplit("-", 1)[1]  # the folder wandb made has the id the block announced
    block = result.stdout.splitlines()[:5]
    assert block == [
        f"run folder: {run_dir}",
        f"overrides:  {keys[-1]} data.name=synthetic data.synthetic_train_size=1600 trainer.max_epochs=1",
        block[2],
        "device:     1 x cpu, precision 32-true",
        f"logger:     W&B offline run {run_id} in {run_dir / 'wandb'} "
        f"(upload: wandb sync {run_dir / 'wandb'}/offline-run-*-{run_id})",
    ]
    assert re.fullmatch(r"model:      plain, depth 11, [\d,]+ parameters; init kaiming", block[2])


def test_a_default_run_prints_no_library_warning(default_run):
    result, _, _ = default_run
    lines = (result.stdout + result.stderr).splitlines()
    assert not [line for line in lines if re.search(r"warn|deprecat", line, re.I)], lines
    assert not [line for line in lines if line.startswith("wandb:")]  # wandb's banners and summary
    assert len([line for line in lines if "W&B" in line or "wandb" in line]) == 1  # the block's logger line
    assert "FLOPs" not in result.stdout  # no model summary whose FLOPs read 0


def test_every_make_target_of_a_command_speaks_the_one_dialect():
    """Each command's target passes the same variables the same way (OVERRIDES: EXPERIMENT, INIT, DATA,
    ..., ARGS), and no program is written inside the Makefile."""
    makefile = (REPO / "Makefile").read_text()
    recipes = dict(re.findall(rf"^([a-z-]+):.*\n\t\$\(PY\) -m {PACKAGE} (.*)$", makefile, flags=re.M))
    commands = set(ABOUT) - {"inits"}  # inits takes no keys
    assert {line.split()[0] for line in recipes.values()} >= commands
    for target, line in recipes.items():
        if line.split()[0] in commands:
            assert "$(OVERRIDES)" in line, target
    assert "define " not in makefile and " -c " not in makefile
