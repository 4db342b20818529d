"""Where a result came from: the code (git commit and whether the work tree had uncommitted changes), the
versions of the libraries that ran it, the machine, and the command line. One dictionary, written into
every run folder's `config.yaml` and `summary.json`, a comparison's `results.json` and `bench.json`.

    {"git": {"commit": str, "dirty": bool} | "no git",
     "versions": {"python", "template", "torch", "lightning", "torchvision", "wandb": str | null},
     "hardware": {"platform", "cpu": str, "cpu_count": int, "gpus": [str]},
     "command": str}
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "lightning", "torchvision", "wandb")
SOURCE = Path(__file__).resolve().parents[2]  # the checkout, when the package runs from one


def collect() -> dict:
    return {"git": git(), "versions": versions(), "hardware": hardware(), "command": command()}


def git(folder: Path = SOURCE) -> dict | str:
    """The commit checked out in `folder` and whether tracked files differ from it; "no git" when the
    package does not run from a git checkout (an installed wheel) or git is missing."""
    try:
        top = _git(folder, "rev-parse", "--show-toplevel")
        if Path(top).resolve() != folder.resolve():  # a checkout of something else around an installed copy
            return "no git"
        commit = _git(folder, "rev-parse", "HEAD")
        dirty = bool(_git(folder, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return "no git"
    return {"commit": commit, "dirty": dirty}


def _git(folder: Path, *arguments: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *arguments], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.strip()


def versions() -> dict[str, str | None]:
    found = {"python": platform.python_version(), "template": _version(__name__.split(".")[0])}
    found.update({name: _version(name) for name in PACKAGES})
    return found


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def hardware() -> dict:
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"platform": platform.platform(), "cpu": cpu_model(), "cpu_count": cpu_count(), "gpus": gpus}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def command() -> str:
    """The command line as the shell would take it back (`python -m template train ...`)."""
    argv = list(sys.argv)
    package = __name__.split(".")[0]
    if argv and argv[0].endswith(os.path.join(package, "__main__.py")):
        argv[0:1] = ["-m", package]
    return shlex.join([Path(sys.executable).name, *argv])
