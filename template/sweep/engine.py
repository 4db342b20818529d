"""Many independent runs on submitit: processes on this machine, or a SLURM job array on a cluster.

Why submitit: a sweep is a list of independent function calls, and submitit runs exactly that — the same
call becomes a local process (`LocalExecutor`), an in-process call (`DebugExecutor`, for debugging) or
one task of a SLURM job array (`AutoExecutor`), with the function and its arguments pickled and the
result or the traceback pickled back. Ray would bring a cluster runtime to run what is here a map.

Each point's result is a JSON file under `<folder>/points/`, written atomically as soon as its job ends,
so a sweep that is stopped keeps every finished point and, started again, runs only the points without a
completed result (a failed point is tried again). A point whose job fails is recorded with its error's
last line; the others go on.

On SLURM every missing point is one task of a single array (`slurm_array_parallelism` = `parallel`); the
local executor starts every job it is handed at once, so it is handed `parallel` points at a time.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from template.run.folder import write_json

EXECUTORS = ("local", "debug", "slurm")


def result_path(folder: Path, key: str) -> Path:
    return folder / "points" / f"{key}.json"


def completed(folder: Path, key: str) -> dict | None:
    path = result_path(folder, key)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if record.get("status") == "completed" else None


def run(
    points: Sequence[dict],
    work: Callable[[dict], dict],
    folder: Path,
    executor: str = "local",
    parallel: int = 2,
    timeout_min: float = 60,
    slurm: dict | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """`work(point)` for every point (a dict with a unique "key") without a completed result; returns
    every point's record, {"status": "completed" | "failed", "result" | "error", "seconds"}."""
    import submitit

    folder.mkdir(parents=True, exist_ok=True)
    missing = [point for point in points if completed(folder, point["key"]) is None]
    log(f"sweep: {len(points) - len(missing)} of {len(points)} points already done; running {len(missing)}")
    engine = submitit.AutoExecutor(folder=folder / "submitit", cluster=executor)
    engine.update_parameters(timeout_min=timeout_min)
    if executor == "slurm":
        engine.update_parameters(
            slurm_array_parallelism=parallel, **{f"slurm_{k}": v for k, v in (slurm or {}).items()}
        )
        waves = [missing] if missing else []
    else:
        waves = [missing[i : i + parallel] for i in range(0, len(missing), parallel)]
    for wave in waves:
        started = time.monotonic()
        jobs = engine.map_array(work, wave)
        for point, job in zip(wave, jobs, strict=True):
            try:
                record = {"status": "completed", "result": job.result()}
            except Exception as error:  # the job's traceback, pickled back: keep its exception's line
                record = {"status": "failed", "error": _last_exception(str(error)) or type(error).__name__}
                log(f"sweep: point {point['key']} failed: {record['error']}")
            record.update(point=point, seconds=round(time.monotonic() - started, 1))
            result_path(folder, point["key"]).parent.mkdir(parents=True, exist_ok=True)
            write_json(result_path(folder, point["key"]), record)
    return {point["key"]: json.loads(result_path(folder, point["key"]).read_text()) for point in points}


def _last_exception(trace: str) -> str | None:
    """`module.Error: message` of a traceback (submitit's message adds the log paths after it)."""
    lines = [line.strip() for line in trace.splitlines()]
    found = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt|Exit)\b.*", line)]
    return found[-1] if found else None
