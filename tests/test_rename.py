"""`make rename`: a copy of the repository renamed to another package still works."""

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from template import rename
from template.errors import UsageError

REPO = Path(__file__).resolve().parent.parent


def copy_of_repo(destination: Path, with_git: bool = True) -> Path:
    """This tree's project files (what git tracks or would track), as a fresh clone of it would hold
    them (`with_git`: committed in a new repository) or as an unpacked archive (no `.git`)."""
    for name in rename.project_files(REPO):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    if with_git:
        git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
        for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "a fresh clone"]):
            subprocess.run([*git, *command], cwd=destination, check=True)
    return destination


def offline_install_env() -> dict[str, str]:
    """What lets the copy's `make install` run without a download: its new virtual environment sees
    this one's packages through PYTHONPATH, and pip neither fetches nor builds in isolation (so
    `pip install -e '.[dev]'` finds every requirement satisfied and installs just the renamed package).
    pip, not uv, which does not count packages found through PYTHONPATH as installed."""
    env = {key: value for key, value in os.environ.items() if key not in ("TEMPLATE_RUN_DIR", "MAKEFLAGS")}
    env.update(
        PYTHONPATH=sysconfig.get_paths()["purelib"],
        PYTHON_BOOT=getattr(sys, "_base_executable", sys.executable),
        PIP_NO_INDEX="1",
        INSTALLER="pip",
        PIP_NO_BUILD_ISOLATION="0",  # pip reads this "no-" option inverted: 0 turns isolation off
    )
    return env


def collected(root: Path, python: str = sys.executable, env: dict | None = None) -> list[str]:
    """The ids `make test` runs in the tree at `root` (its pytest configuration, its fast selection)."""
    listing = subprocess.run(
        [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return [line for line in listing.splitlines() if "::" in line]


def smoke_subset(root: Path, name: str, ids: list[str]) -> list[str]:
    """One test of every module, and every test whose own code names package `name` other than in an
    import (a `-m name` command line, a `name/` path, a string the rename must have rewritten): what a
    rename that missed something would break first. The whole renamed suite is docs/forking.md's command."""
    chosen, first_of_module = [], set()
    mention = re.compile(rf"\b{re.escape(name)}\b")
    naming: dict[str, set[str]] = {}
    for node in ids:
        module, _, test = node.partition("::")
        if module not in naming:
            source = (root / module).read_text()
            tree = ast.parse(source)
            lines = source.splitlines()
            naming[module] = {
                f.name
                for f in ast.walk(tree)
                if isinstance(f, ast.FunctionDef) and f.name.startswith("test")
                and any(
                    mention.search(line) and not line.lstrip().startswith(("import ", "from "))
                    for line in lines[f.lineno - 1 : f.end_lineno]
                )
            }  # fmt: skip
        if module not in first_of_module or test.partition("[")[0] in naming[module]:
            chosen.append(node)
            first_of_module.add(module)
    return chosen


def spelled(name: str) -> str:
    """Every way the code names the package, and the word in prose, for package `name`. Built from the
    name at run time, so that a rename of this file leaves the example as it is: in a renamed copy the
    same test renames that copy's name."""
    return (
        f"from {name}.inits import x\nimport {name}\nA Lightning template.\n"
        f'python -m {name} train\nsee {name}/config.py\nname = "{name}"\n'
        f'include = ["{name}*"]\n  project: {name}\nlogger("{name}.monitor")\nmy_template.x\n'
        f'[sys.executable, "-m", "{name}", "train"]\n'
    )


def test_rename_text_touches_code_not_prose():
    new = "lab" if rename.OLD != "lab" else "lab2"
    renamed = rename.rename_text(spelled(rename.OLD), new)
    assert renamed == spelled(new)  # `my_template.x` is another identifier, left alone
    assert "A Lightning template." in renamed  # the word in prose stays


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
        (rename.OLD, f"NAME={rename.OLD!r} is the current name; choose another"),
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
    assert (REPO / rename.OLD / "rename.py").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("with_git", [True, False], ids=["clone", "archive-without-git"])
def test_the_readme_fork_command_renames_a_copy_whose_suite_collects_whole_and_whose_smoke_subset_passes(
    tmp_path, with_git
):
    """The Forking page's fork line up to `make install`, then the copy's fast suite collected (every test of
    this tree's, under the new name) and, in the clone, its smoke subset run. Running the whole copied
    suite twice, as this test did, was about 15 of CI's 39 minutes; docs/forking.md gives that command."""
    root = copy_of_repo(tmp_path / "lab_repo", with_git)
    expected = collected(REPO)  # of the tree copied, listed now
    result = subprocess.run(
        "make rename NAME=lab && make install",  # docs/forking.md's fork line, but for its `make test`
        shell=True,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=1500,
        env=offline_install_env(),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert not (root / rename.OLD).exists() and (root / "lab" / "__main__.py").is_file()
    python = str(root / ".venv" / "bin" / "python")
    ids = collected(root, python, offline_install_env())
    assert len(ids) == len(expected)
    if not with_git:
        return  # the archive differs from the clone in which files rename finds; the code run is the same
    smoke = smoke_subset(root, "lab", ids)
    modules = {node.partition("::")[0] for node in ids}
    assert len(smoke) >= len(modules)
    run = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *smoke],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=1500,
        env=offline_install_env(),
    )
    # pytest's closing line; a library's farewell at interpreter exit may still follow it
    summary = next(
        line for line in reversed(run.stdout.splitlines()) if re.search(r"\d+ (passed|failed)", line)
    )
    counts = {word: int(number) for number, word in re.findall(r"(\d+) (\w+)", summary)}
    assert run.returncode == 0 and not {"failed", "error", "errors"} & set(counts), run.stdout[-4000:]
    assert counts["passed"] + counts.get("skipped", 0) == len(smoke), summary
    leftovers = subprocess.run(
        [
            "grep",
            "-rnE",
            rf"(import|from) {rename.OLD}\b|-m {rename.OLD}\b",
            "--include=*.py",
            "--include=Makefile",
            "--include=*.toml",
            "--exclude-dir=.venv",
            ".",
        ],
        cwd=root,
        capture_output=True,
        text=True,
    ).stdout
    assert leftovers == ""
    help_text = subprocess.run(
        [str(root / ".venv" / "bin" / "python"), "-m", "lab", "--help"],
        cwd=root,
        capture_output=True,
        text=True,
        env=offline_install_env(),
    )
    assert help_text.stdout.startswith("usage: python -m lab <command>")
