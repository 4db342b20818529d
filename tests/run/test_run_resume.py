"""Resuming: which folders can be continued, which overrides are refused, and a corrupt checkpoint."""

import os
import time

import pytest
import torch
from omegaconf import OmegaConf

from template import config
from template.errors import UsageError
from template.run import resume, schedule


def make_run(runs, name, **overrides):
    run = runs / name
    (run / "checkpoints").mkdir(parents=True)
    cfg = config.load([f"{key}={value}" for key, value in overrides.items()])
    OmegaConf.save(cfg, run / "config.yaml")
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 1}, run / "checkpoints" / "last.ckpt")
    return run


def test_resume_last_picks_the_newest_run(tmp_path):
    old = make_run(tmp_path, "a")
    new = make_run(tmp_path, "b")
    os.utime(old / "config.yaml", (time.time() + 60, time.time() + 60))
    assert resume.find_run("last", str(tmp_path)) == old.resolve()
    assert resume.find_run(str(new), str(tmp_path)) == new.resolve()


def test_resume_reloads_the_saved_config_and_lets_epochs_grow(tmp_path):
    run = make_run(tmp_path, "r", **{"model.depth": 7, "data": "synthetic", "trainer.max_epochs": 2})
    cfg = config.load([f"resume={run}", "trainer.max_epochs=5"])
    assert cfg.model.depth == 7 and cfg.data.name == "synthetic" and cfg.trainer.max_epochs == 5
    assert cfg.resume == str(run.resolve())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.depth=9",
            "resume: model.depth=9 would change the experiment of r (it ran with 7); only "
            "trainer.max_epochs, trainer.max_steps, trainer.enable_progress_bar, data.root, "
            "data.num_workers, checkpoint.every_n_steps, logger.mode may change",
        ),
        (
            "init=glorot",
            "resume: init.name='glorot' would change the experiment of r (it ran with 'kaiming')",
        ),
        ("trainer.max_epochs=1", "resume: trainer.max_epochs=1 is fewer than the 2 of r; it may only grow"),
    ],
)
def test_resume_refuses_overrides_that_change_the_experiment(tmp_path, override, message):
    run = make_run(tmp_path, "r", **{"model.depth": 7, "trainer.max_epochs": 2})
    with pytest.raises(UsageError) as caught:
        config.load([f"resume={run}", override])
    assert str(caught.value).startswith(message), caught.value


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(UsageError) as caught:
        config.load([f"resume={tmp_path}", f"runs_dir={tmp_path}"])
    assert str(caught.value) == (
        f"resume={str(tmp_path)!r} is not a run folder (it has no config.yaml); "
        f"give a folder under {tmp_path}/, or last for the newest"
    )
    with pytest.raises(UsageError, match=r"^resume=last: there is no run under .* to continue$"):
        config.load(["resume=last", f"runs_dir={tmp_path}"])


def test_resume_without_last_checkpoint(tmp_path):
    run = make_run(tmp_path, "r")
    (run / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(UsageError, match=r"has no checkpoints/last\.ckpt to continue from$"):
        config.load([f"resume={run}"])


def test_corrupt_checkpoint_is_refused_in_one_line(tmp_path):
    run = make_run(tmp_path, "r")
    checkpoint = run / "checkpoints" / "last.ckpt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:50])
    with pytest.raises(UsageError) as caught:
        resume.check_checkpoint(run)
    text = str(caught.value)
    assert text.startswith(f"checkpoint {checkpoint} cannot be loaded (")
    assert text.endswith(
        f"delete it and resume from another checkpoint in {checkpoint.parent}, or start a new run"
    )
    assert "\n" not in text


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    """weights_only: a checkpoint that would run arbitrary code on load is not loaded."""
    run = make_run(tmp_path, "r")
    torch.save({"payload": os.system}, run / "checkpoints" / "last.ckpt")
    with pytest.raises(UsageError, match="cannot be loaded"):
        resume.check_checkpoint(run)


def test_wandb_run_id_from_the_offline_folder_name(tmp_path):
    (tmp_path / "wandb" / "offline-run-20261129_010203-abc123xy").mkdir(parents=True)
    assert resume.wandb_run_id(tmp_path) == "abc123xy"
    assert resume.wandb_run_id(tmp_path / "nothing") is None


def resumed(tmp_path, *overrides: str):
    run = make_run(tmp_path, "r", **{"trainer.max_epochs": 2, "scheduler.warmup_epochs": 1})
    return config.load([f"resume={run}", *overrides]), run


def saved_at(step: int) -> dict:
    """A checkpoint of a 2-epoch plan of 10 steps an epoch, 1 epoch of warm-up, at `step`."""
    return {"global_step": step, "schedule": {"total_steps": 20, "steps_per_epoch": 10, "warmup_steps": 10}}


@pytest.mark.parametrize("step", [3, 10])
def test_extending_within_the_warm_up_is_allowed(tmp_path, step):
    cfg, run = resumed(tmp_path, "trainer.max_epochs=5")
    schedule.check_extension(cfg, saved_at(step), run)


def test_extending_a_decaying_cosine_is_refused_in_one_line(tmp_path):
    cfg, run = resumed(tmp_path, "trainer.max_epochs=5")
    with pytest.raises(UsageError) as refused:
        schedule.check_extension(cfg, saved_at(11), run)
    assert str(refused.value) == (
        "resume: trainer.max_epochs=5, trainer.max_steps=-1 would change the cosine schedule of r from 20 to "
        "50 steps after 11 steps decayed on the old curve (the rate depends on the planned length once the "
        "10-step warm-up is over), so the result would equal no planned run; resume without changing the "
        "length, or start a new run planned that long"
    )


def test_the_same_length_or_no_schedule_is_never_refused(tmp_path):
    cfg, run = resumed(tmp_path)
    schedule.check_extension(cfg, saved_at(15), run)
    flat = make_run(tmp_path, "flat", **{"trainer.max_epochs": 2, "scheduler.name": "none"})
    schedule.check_extension(config.load([f"resume={flat}", "trainer.max_epochs=9"]), saved_at(15), flat)


def test_max_steps_bounds_the_planned_length(tmp_path):
    cfg, _ = resumed(tmp_path, "trainer.max_epochs=5", "trainer.max_steps=30")
    assert schedule.planned_total(cfg.trainer, 10) == 30
