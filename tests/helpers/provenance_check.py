"""One check of a provenance block, shared by the tests of every file that carries one."""

import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def git_head() -> dict | str:
    """The commit and dirty flag, asked of git independently of `template.run.provenance`."""
    try:
        commit = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        status = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "no git"
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def assert_true_provenance(block: dict, arguments: list[str] | None = None) -> None:
    """`arguments`: the command's arguments after the program (default: this process's)."""
    assert block["git"] == git_head()
    versions = block["versions"]
    assert versions["python"] == platform.python_version() and versions["torch"] == metadata.version("torch")
    for name in ("lightning", "torchvision", "wandb"):
        assert versions[name] == metadata.version(name)
    assert versions["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert block["hardware"]["cpu_count"] >= 1 and block["hardware"]["cpu"]
    assert block["hardware"]["gpus"] == [
        torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
    ]
    arguments = sys.argv[1:] if arguments is None else arguments
    command = shlex.split(block["command"])
    assert command[0] == Path(sys.executable).name, block["command"]
    assert command[len(command) - len(arguments) :] == arguments, block["command"]
