"""The whole path through the command line, on the synthetic set: run folder, config, checkpoint,
summary.json, the offline W&B run read back from its file, and one-line refusals of bad input."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf
from wandb.sdk.lib.service.service_token import UnixServiceToken

from template.__main__ import main
from tests.helpers.provenance_check import assert_true_provenance
from tests.helpers.tiny import tiny
from tests.helpers.wandb_reader import read_run

# Small enough for seconds on two cores; the whole training split in one batch, so step 0's statistics
# are over a known set of samples whatever the shuffling.
TINY = tiny("trainer.max_epochs=2", "stats.every_n_steps=1", "trainer.log_every_n_steps=1", "seed=3")


SECRET = "0123456789abcdef0123456789abcdef01234567"  # a W&B API key's shape


def run_cli(tmp_path, *args, check=True, env=None):
    result = subprocess.run(
        [sys.executable, "-m", "template", *args, f"runs_dir={tmp_path / 'runs'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "WANDB_API_KEY": SECRET, **(env or {})},
    )
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("cli")
    run_cli(tmp_path, "train", "init=kaiming", *TINY)
    (run_dir,) = (tmp_path / "runs").iterdir()
    return run_dir


def test_run_folder_holds_config_checkpoint_summary_plots(tiny_run):
    config = OmegaConf.load(tiny_run / "config.yaml")
    assert config.init.name == "kaiming" and config.model.depth == 5 and config.seed == 3
    assert (tiny_run / "checkpoints" / "last.ckpt").is_file()
    assert list(tiny_run.glob("wandb/offline-run-*/run-*.wandb"))
    assert list((tiny_run / "plots").glob("*.png"))
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert (summary["init"], summary["model"], summary["data"], summary["seed"]) == (
        "kaiming",
        "plain",
        "synthetic",
        3,
    )
    assert summary["steps"] == 2  # one batch per epoch, two epochs
    assert set(summary["final"]) == {"train/loss", "val/loss", "val/acc"}
    assert all(isinstance(value, float) for value in summary["final"].values())
    layers = summary["at_init"]["layers"]
    assert [layer["name"] for layer in layers] == ["conv1", "conv2", "conv3", "conv4", "fc"]
    assert summary["at_init"]["batch_size"] == 256
    checkpoint = torch.load(tiny_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 2
    command = ["-m", "template", "train", "init=kaiming", *TINY, f"runs_dir={tiny_run.parent}"]
    assert_true_provenance(OmegaConf.to_container(config.provenance), command)
    assert_true_provenance(summary["provenance"], command)


def test_wandb_run_has_step0_statistics_for_every_layer(tiny_run):
    summary = json.loads((tiny_run / "summary.json").read_text())
    run = read_run(tiny_run)
    assert run.run_id == summary["wandb_run_id"]
    assert run.config["init"]["name"] == "kaiming"
    step0 = [row for row in run.history if row.get("trainer/global_step") == 0]
    merged = {key: value for row in step0 for key, value in row.items()}
    for layer in summary["at_init"]["layers"]:
        name = layer["name"]
        assert merged[f"act_var/{name}"] == pytest.approx(layer["act_var"], rel=1e-6)
        assert any(key.startswith(f"act_hist/{name}") for key in merged), name


@pytest.mark.slow  # a real training process against a silent service: 13 s, in make test-all
def test_a_run_started_by_a_process_that_shares_its_wandb_service_still_writes_through_its_own(tmp_path):
    """wandb hands its service to child processes through WANDB_SERVICE. A run registered in a parent's
    service is closed on that service's time, so `make train` could return before its file is whole. The
    service exported here listens and never answers: a run that joined it would hang in wandb.init and
    fail; one that starts its own service trains, and its file reads back to the last step."""
    silent = socket.socket(socket.AF_UNIX)
    silent.bind(str(tmp_path / "service.sock"))
    silent.listen()
    token = UnixServiceToken(parent_pid=os.getpid(), path=str(tmp_path / "service.sock")).env_value
    try:
        run_cli(tmp_path, "train", "init=kaiming", *TINY, env={"WANDB_SERVICE": token})
    finally:
        silent.close()
    (run_dir,) = (tmp_path / "runs").iterdir()
    steps = [row["trainer/global_step"] for row in read_run(run_dir).history if "train/loss" in row]
    assert steps == [0, 1]


def test_no_secret_is_written_into_the_run_folder(tiny_run):
    for path in tiny_run.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_threads_sets_torchs_thread_count_for_the_run(tmp_path):
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    try:
        assert main(["train", *TINY, f"threads={wanted}", f"runs_dir={tmp_path}"]) == 0
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)


def test_train_loss_and_accuracy_reach_wandb(tiny_run):
    keys = {key for row in read_run(tiny_run).history for key in row}
    assert {"train/loss", "train/acc", "val/loss", "val/acc"} <= keys


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("init=foo", "error: init.name='foo' is unknown; choose one of: "),
        ("model=foo", "error: model.name='foo' is unknown; choose one of: "),
        (
            "data=foo",
            "error: data.name='foo' is unknown; choose one of: "
            "cifar10, cifar100, mnist, fashion_mnist, svhn, digits, digits_cifar, synthetic",
        ),
        ("model.dept=3", "error: unknown config key 'model.dept'; valid keys here: name, depth"),
        ("model.depth=0", "error: model.depth=0 must be a positive integer"),
        ("data.batch_size=0", "error: data.batch_size=0 must be a positive integer"),
        ("trainer.max_epochs=two", "error: trainer.max_epochs='two' must be a positive integer"),
        ("model=resnet model.depth=21", "error: model.depth=21 is not a resnet depth; choose one of: "),
        ("stats.band_level=1.5", "error: stats.band_level=1.5 must lie strictly between 0 and 1\n"),
        ("stats.vanish_factor=0", "error: stats.vanish_factor=0.0 must be positive\n"),
        ("stats.jacobian=sometimes", "error: stats.jacobian='sometimes' is unknown; choose one of: init"),
        ("threads=-1", "error: threads=-1 must not be negative\n"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_run_folder(tmp_path, capsys, override, message):
    """In-process, through the same `main` the command line runs (one real subprocess is below)."""
    code = main(["train", *override.split(), f"runs_dir={tmp_path / 'runs'}", "data.root=" + str(tmp_path)])
    stderr = capsys.readouterr().err
    assert code == 2
    assert stderr.startswith(message), stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert not (tmp_path / "runs").exists()


def test_bad_input_through_a_real_process(tmp_path):
    result = run_cli(tmp_path, "train", "init=foo", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: init.name='foo' is unknown; choose one of: ")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_unknown_command_is_refused(tmp_path):
    result = run_cli(tmp_path, "fly", check=False)
    assert result.returncode == 2
    commands = "train, inits, compare, reproduce, bench, theory, phase"
    assert result.stderr == f"error: command 'fly' is unknown; choose one of: {commands}\n"


def test_unwritable_runs_folder_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code = main(
        [
            "train",
            "data=synthetic",
            "data.synthetic_train_size=64",
            "data.val_size=16",
            f"runs_dir={blocker / 'runs'}",
        ]
    )
    stderr = capsys.readouterr().err
    assert code == 2
    assert stderr.startswith(f"error: cannot create the run folder {blocker / 'runs'}/")
    assert stderr.rstrip().endswith("set runs_dir= to a writable folder") and stderr.count("\n") == 1
