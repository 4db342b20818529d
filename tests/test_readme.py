"""Every command the README and its docs/ pages mark runnable works as written, on synthetic data, in a
few seconds each; the README is the front door and every link in it and its pages leads somewhere.

A fenced ```bash block right after a `<!-- runnable -->` line is run line by line through the shell from
the repository root. `ARGS` in the environment (which the Makefile reads when the command line does not
set it) keeps each run small and puts its run folders in a temporary directory.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from template import inits
from tests.helpers import docs

REPO = Path(__file__).resolve().parent.parent
DOCS = docs.text()  # the README and every page under docs/
RUNNABLE = re.compile(r"<!-- runnable -->\n```bash\n(.*?)```", re.S)


def runnable_commands() -> list[str]:
    return [line for block in RUNNABLE.findall(DOCS) for line in block.splitlines() if line.strip()]


def test_readme_marks_the_quick_start_commands_runnable():
    commands = runnable_commands()
    assert "make train INIT=kaiming DATA=digits_cifar" in commands
    assert any(command.startswith("make compare") for command in commands)
    assert any("RESUME=last" in command for command in commands)


def test_the_readmes_first_screen_holds_the_pitch_the_figure_the_commands_and_the_tree():
    first_screen = "\n".join((REPO / "README.md").read_text().splitlines()[:60])
    assert "He et al. 2015" in first_screen and "](docs/quick_demo_error_vs_epoch.png)" in first_screen
    for command in ("make train INIT=kaiming", "make compare", "make test"):
        assert command in first_screen, command
    package = inits.__name__.split(".")[0]
    for folder in sorted(p.name for p in (REPO / package).iterdir() if (p / "__init__.py").exists()):
        assert f"{folder}/" in first_screen, folder  # the tree names every folder of the package


def test_every_link_of_the_readme_and_its_pages_resolves():
    """A page that moved, a renamed section or a deleted figure breaks a link: here, not on GitHub."""
    linked = set()
    for page in docs.pages():
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")) or not re.match(r"#|[\w./-]+\.\w+(#|$)", target):
                continue  # a web page, or mathematics in brackets such as E[φ′²](q_l,p)
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            assert resolved.exists(), f"{page.name}: {target}"
            linked.add(resolved)
            if anchor and resolved.suffix == ".md":
                assert anchor in _anchors(resolved.read_text()), f"{page.name}: {target}"
    assert set(docs.pages()[1:]) <= linked, "a page under docs/ that nothing links"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_readme_init_table_matches_the_registry():
    for row in inits.table():
        assert f"| `{row['name']}` |" in DOCS, row["name"]
        assert row["formula"].replace("|", "\\|") in DOCS, row["name"]


@pytest.mark.slow
def test_readme_runnable_commands_work_as_written(tmp_path):
    small = [
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "data.num_workers=0",
        "trainer.enable_progress_bar=false",
        f"runs_dir={tmp_path / 'runs'}",
    ]
    env = {**os.environ, "ARGS": " ".join(small)}
    env.pop("TEMPLATE_RUN_DIR", None)
    for command in runnable_commands():
        result = subprocess.run(
            command, shell=True, cwd=REPO, env=env, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    assert list((tmp_path / "runs").glob("*/summary.json"))
