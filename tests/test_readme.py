"""Every command the README marks runnable works as written, on synthetic data, in a few seconds each.

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

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
RUNNABLE = re.compile(r"<!-- runnable -->\n```bash\n(.*?)```", re.S)


def runnable_commands() -> list[str]:
    return [line for block in RUNNABLE.findall(README) for line in block.splitlines() if line.strip()]


def test_readme_marks_the_quick_start_commands_runnable():
    commands = runnable_commands()
    assert "make train INIT=kaiming DATA=synthetic" in commands
    assert any(command.startswith("make compare") for command in commands)
    assert any("RESUME=last" in command for command in commands)


def test_readme_init_table_matches_the_registry():
    for row in inits.table():
        assert f"| `{row['name']}` |" in README, row["name"]
        assert row["formula"].replace("|", "\\|") in README, row["name"]


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
