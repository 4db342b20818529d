"""A fork onto data of another shape, with exactly the code docs/forking.md shows: a
1×16×16 data set trains end to end through every model family, and, in a copy of the repository
edited as it says, through the command line to a learned classifier."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from template import config, data, rename
from template.train import train
from tests.helpers import fork

QUICK = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.enable_progress_bar=false",
]


@pytest.fixture
def tiny(monkeypatch):
    """The Forking page's data set, registered as its registry line does."""
    (path, code), registry = fork.blocks()[0], fork.blocks()[1]
    assert path.endswith("/data/tiny.py") and registry[0].endswith("/data/registry.py")
    namespace = {}
    exec(compile(code, path, "exec"), namespace)  # noqa: S102 - the Forking page's own code, as a fork pastes it
    monkeypatch.setitem(data.DATASETS, "tiny", namespace["Tiny"])
    return namespace["Tiny"]


@pytest.mark.parametrize("model", ["model=plain", "model=vgg", "model=resnet model.depth=20"])
def test_the_readme_data_set_trains_through_every_model_family(tiny, tmp_path, model):
    cfg = config.load(["data=tiny", *model.split(), *QUICK, f"runs_dir={tmp_path}"])
    run_dir = train(cfg)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["data"] == "tiny" and summary["steps"] == 3
    first = summary["at_init"]["layers"][0]
    assert first["fan_in"] == 1 * 3 * 3  # the first conv sees the data's one channel


def test_the_readme_registry_line_names_every_data_set_the_registry_holds():
    ((_, line),) = [block for block in fork.blocks() if block[0].endswith("/data/registry.py")]
    names = line.splitlines()[-1].partition("(")[2].rstrip(")").split(", ")
    assert [data.DATASETS[name].__name__ for name in data.available()] == names[:-1]


@pytest.mark.slow
def test_a_forked_copy_trains_the_readme_data_set_from_the_command_line(tmp_path):
    root = tmp_path / "fork"
    for name in rename.project_files(fork.REPO):
        if (fork.REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(fork.REPO / name, root / name)
    touched = fork.apply(root)
    assert [path.name for path in touched] == ["tiny.py", "registry.py"]
    package = rename.OLD
    env = {key: value for key, value in os.environ.items() if key != "TEMPLATE_RUN_DIR"}
    env["PYTHONPATH"] = str(root)  # the copy, not the installed package
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            package,
            "train",
            "data=tiny",
            "trainer.max_epochs=4",
            f"runs_dir={tmp_path}/runs",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (summary_path,) = (tmp_path / "runs").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["data"] == "tiny" and summary["status"] == "completed"
    assert summary["final"]["val/acc"] > 0.9  # 4 classes: chance is 0.25
