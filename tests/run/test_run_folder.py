"""The run folder's name and creation: one folder per job, whichever launcher started its processes."""

import json
import re

import pytest

from template import config
from template.errors import UsageError
from template.run import folder as run_folder

LAUNCHER_VARIABLES = (
    "TEMPLATE_RUN_DIR",
    "SLURM_JOB_ID",
    "TORCHELASTIC_RUN_ID",
    "RANK",
    "SLURM_PROCID",
    "SLURM_RESTART_COUNT",
    "TORCHELASTIC_RESTART_COUNT",
)


@pytest.fixture(autouse=True)
def no_launcher(monkeypatch):
    """None of the launchers' variables, and none left behind: `create` sets TEMPLATE_RUN_DIR."""
    for variable in LAUNCHER_VARIABLES:
        monkeypatch.setenv(variable, "")  # recorded, so the teardown restores what was there before
        monkeypatch.delenv(variable)


@pytest.fixture
def cfg(tmp_path):
    return config.load(["data=synthetic", "init=glorot", "model.depth=5", "seed=3", f"runs_dir={tmp_path}"])


def test_name_is_time_init_model_depth_data_seed(cfg):
    assert re.fullmatch(r"\d{8}-\d{6}-glorot-plain5-synthetic-s3", run_folder.default_name(cfg))


@pytest.mark.parametrize(
    ("variable", "value", "prefix"),
    [("SLURM_JOB_ID", "4711", "job4711"), ("TORCHELASTIC_RUN_ID", "abc", "jobabc")],
)
def test_every_node_of_a_job_agrees_on_the_job_id(cfg, monkeypatch, variable, value, prefix):
    monkeypatch.setenv(variable, value)
    assert run_folder.default_name(cfg) == f"{prefix}-glorot-plain5-synthetic-s3"


def test_torchrun_without_a_rendezvous_id_falls_back_to_the_time(cfg, monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # torchrun's value when --rdzv-id is not given
    assert re.fullmatch(r"\d{8}-\d{6}-glorot-\S+", run_folder.default_name(cfg))


def test_runs_started_in_the_same_second_get_numbered_folders(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run-2").mkdir()
    assert run_folder.unused(tmp_path / "run") == tmp_path / "run-3"
    assert run_folder.unused(tmp_path / "fresh") == tmp_path / "fresh"


def test_rank_zero_creates_the_folder_and_tells_the_other_processes(cfg, monkeypatch):
    run_dir, created = run_folder.create(cfg)
    assert created and sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.yaml", "plots"]
    monkeypatch.setenv("RANK", "1")  # a process Lightning's launcher started: the name comes from rank 0
    assert run_folder.create(cfg) == (run_dir, False)


def test_a_rank_that_is_not_zero_creates_nothing(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    run_dir, created = run_folder.create(cfg)
    assert created and run_dir.parent == tmp_path and not run_dir.exists()


def test_an_existing_run_name_is_refused_in_one_line(tmp_path):
    named = config.load(["data=synthetic", f"runs_dir={tmp_path}", "run_name=mine"])
    (tmp_path / "mine").mkdir()
    with pytest.raises(UsageError) as refused:
        run_folder.create(named)
    mine = tmp_path / "mine"
    assert (
        str(refused.value) == f"run folder {mine} exists already; choose another run_name, or resume={mine}"
    )


def test_json_is_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "summary.json"
    run_folder.write_json(path, {"steps": 3})
    run_folder.write_json(path, {"steps": 4})
    assert json.loads(path.read_text()) == {"steps": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no .partial left behind


def test_under_a_job_id_an_existing_folder_is_not_numbered_but_refused(cfg, monkeypatch, tmp_path):
    """Another rank could not learn a number rank 0 picked; a second run of one job needs a run_name."""
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    existing = tmp_path / run_folder.default_name(cfg)
    existing.mkdir()
    with pytest.raises(UsageError, match="exists already"):
        run_folder.create(cfg)


def test_a_requeued_job_continues_the_folder_its_job_id_names(cfg, monkeypatch, tmp_path):
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert run_folder.requeued(cfg) is None  # first attempt
    first, _ = run_folder.create(cfg)
    monkeypatch.delenv("TEMPLATE_RUN_DIR")
    assert run_folder.requeued(cfg) is None  # same job, not requeued: SLURM_RESTART_COUNT unset
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert run_folder.requeued(cfg) == first
    monkeypatch.setenv("SLURM_PROCID", "1")  # every rank finds the same folder
    assert run_folder.requeued(cfg) == first
    assert run_folder.create(cfg, first) == (first, True) and sorted(p.name for p in tmp_path.iterdir()) == [
        first.name
    ]


def test_without_a_job_id_nothing_is_requeued(cfg, monkeypatch):
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert run_folder.requeued(cfg) is None
