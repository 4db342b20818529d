"""`make rename`: a copy of the repository renamed to another package still works."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from template import rename
from template.errors import UsageError

REPO = Path(__file__).resolve().parent.parent


def copy_of_repo(destination: Path) -> Path:
    for name in rename.project_files(REPO):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    subprocess.run(["git", "init", "-q"], cwd=destination, check=True)
    return destination


def test_rename_text_touches_code_not_prose():
    text = (
        "from template.inits import x\nimport template\nA Lightning template.\n"
        'python -m template train\nsee template/config.py\nname = "template"\n'
        'include = ["template*"]\n  project: template\nlogger("template.monitor")\nmy_template.x\n'
        '[sys.executable, "-m", "template", "train"]\n'
    )
    assert rename.rename_text(text, "lab") == (
        "from lab.inits import x\nimport lab\nA Lightning template.\n"
        'python -m lab train\nsee lab/config.py\nname = "lab"\n'
        'include = ["lab*"]\n  project: lab\nlogger("lab.monitor")\nmy_template.x\n'
        '[sys.executable, "-m", "lab", "train"]\n'
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "2cool",
            "NAME='2cool' is not a Python identifier; use letters, digits and _, not starting with a digit",
        ),
        (
            "my-lab",
            "NAME='my-lab' is not a Python identifier; use letters, digits and _, not starting with a digit",
        ),
        ("class", "NAME='class' is a keyword or not lower case; choose a lower-case identifier"),
        ("Lab", "NAME='Lab' is a keyword or not lower case; choose a lower-case identifier"),
        ("torch", "NAME='torch' is taken: a module of that name is already importable"),
        ("json", "NAME='json' is taken: a module of that name is already importable"),
        ("template", "NAME='template' is the current name; choose another"),
    ],
)
def test_bad_names_are_refused_in_one_line(name, message):
    with pytest.raises(UsageError) as caught:
        rename.check_name(name)
    assert str(caught.value) == message


def test_make_rename_refuses_without_changing_anything(tmp_path):
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "rename", "NAME=torch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "error: NAME='torch' is taken: a module of that name is already importable" in result.stderr
    assert (REPO / "template" / "rename.py").is_file()


@pytest.mark.slow
def test_renamed_copy_passes_its_fast_tests(tmp_path):
    root = copy_of_repo(tmp_path / "lab_repo")
    changed = rename.rename("lab", root)
    assert not (root / "template").exists() and (root / "lab" / "__main__.py").is_file()
    assert root / "pyproject.toml" in changed and root / "Makefile" in changed
    leftovers = subprocess.run(
        [
            "grep",
            "-rnE",
            r"(import|from) template\b|template\.[a-z_]+\(|-m template\b",
            "--include=*.py",
            "--exclude=test_rename.py",  # holds the old name as test data, on purpose
            "--include=Makefile",
            "--include=*.toml",
            ".",
        ],
        cwd=root,
        capture_output=True,
        text=True,
    ).stdout
    assert leftovers == ""
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy is not installed; its CLI runs from tmp folders
    result = subprocess.run(
        # test_rename.py itself is left out: its examples spell the old name, which is now another package
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "--ignore=tests/test_rename.py",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]
    help_text = subprocess.run(
        [sys.executable, "-m", "lab", "--help"], cwd=root, capture_output=True, text=True
    )
    assert help_text.stdout.startswith("usage: python -m lab <command>")
