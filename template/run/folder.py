"""The run folder: its name, agreed by every process of a job, and the files written into it.

Layout (docs/running.md's table of a run folder): `config.yaml`, `checkpoints/`, `wandb/offline-run-*`,
`plots/`, `summary.json`.
Only global rank 0 writes; every file that a kill could catch half-written is written then renamed.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from template.errors import UsageError
from template.run import provenance

RUN_DIR_ENV = "TEMPLATE_RUN_DIR"


def create(cfg: DictConfig, continuing: Path | None = None) -> tuple[Path, bool]:
    """The run folder, created with its config on first call (or `continuing`, a resumed or requeued
    run's); returns it and whether this process created it.

    Lightning's DDP launcher starts the other processes of a node by re-running the same command, so
    the folder's name travels to them through the environment instead of each taking a timestamp of
    its own. Across nodes (torchrun, SLURM) the name comes from the job's id, which every node knows —
    so it is never numbered: another rank could not know the number.
    """
    agreed = os.environ.get(RUN_DIR_ENV)
    if agreed:
        return Path(agreed), False
    if continuing is not None:
        run_dir = continuing
        if _global_rank() == 0 and not (run_dir / "config.yaml").is_file():
            _make(run_dir, cfg, exist_ok=True)  # requeued before it wrote anything
    else:
        run_dir = Path(cfg.runs_dir).resolve() / (cfg.run_name or default_name(cfg))
        if _global_rank() == 0:
            if not cfg.run_name and not _job_id():
                run_dir = unused(run_dir)
            _make(run_dir, cfg)
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir, True


def requeued(cfg: DictConfig) -> Path | None:
    """The folder a requeued job continues: SLURM requeues a pre-empted job under the same id with
    `SLURM_RESTART_COUNT` > 0 (torchrun's restarts set `TORCHELASTIC_RESTART_COUNT`), re-running the
    same command, so every rank finds the folder its first attempt named after the job."""
    restarts = os.environ.get("SLURM_RESTART_COUNT") or os.environ.get("TORCHELASTIC_RESTART_COUNT") or "0"
    if cfg.resume or not _job_id() or int(restarts) < 1:
        return None
    folder = Path(cfg.runs_dir).resolve() / (cfg.run_name or default_name(cfg))
    return folder if folder.is_dir() else None


def default_name(cfg: DictConfig) -> str:
    job = _job_id()
    stamp = f"job{job}" if job else datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{cfg.init.name}-{cfg.model.name}{cfg.model.depth}-{cfg.data.name}-s{cfg.seed}"


def _job_id() -> str | None:
    return os.environ.get("SLURM_JOB_ID") or _torchrun_job()


def _torchrun_job() -> str | None:
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    return None if run_id in (None, "", "none") else run_id


def unused(folder: Path) -> Path:
    """Two runs (or benches) started in the same second get `-2`, `-3`, ... rather than one folder."""
    candidate, count = folder, 1
    while candidate.exists():
        count += 1
        candidate = folder.with_name(f"{folder.name}-{count}")
    return candidate


def _make(run_dir: Path, cfg: DictConfig, exist_ok: bool = False) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=exist_ok)
        (run_dir / "plots").mkdir(exist_ok=exist_ok)
        (run_dir / "checkpoints").mkdir(exist_ok=exist_ok)
    except FileExistsError:
        raise UsageError(
            f"run folder {run_dir} exists already; choose another run_name, or resume={run_dir}"
        ) from None
    except OSError as error:
        raise UsageError(
            f"cannot create the run folder {run_dir}: {error.strerror}; set runs_dir= to a writable folder"
        ) from None
    recorded = {**OmegaConf.to_container(cfg, resolve=True), "provenance": provenance.collect()}
    OmegaConf.save(OmegaConf.create(recorded), run_dir / "config.yaml")


def write_json(path: Path, payload: dict) -> None:
    """Write then rename: a kill mid-write leaves the old file or none, never half of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(partial, path)


def _global_rank() -> int:
    """The process's rank before Lightning has set anything up: from the launcher's environment."""
    for variable in ("RANK", "SLURM_PROCID"):
        if variable in os.environ:
            return int(os.environ[variable])
    return 0
