"""What a comparison found, read from its runs' `summary.json` files: `results.json` and `results.md`.

The numbers are read back from the run folders rather than kept in memory, so the comparison can never
disagree with the runs it points to, and a run that is re-examined later reads the same.

`results.json`:
```
{"name": str, "experiment": str | null, "overrides": [str], "inits": [str], "seeds": [int],
 "results": {<init>: {"mean": {"val/acc": float | null, "val/loss": float | null},
                      "std":  {"val/acc": ..., "val/loss": ...},     # over seeds; null below two
                      "runs": [{"seed": int, "run_dir": str, "status": str, "error": str | null,
                                "val/acc": float | null, "val/loss": float | null}, ...]}}}
```
With `compare.depths` (a depth sweep) each init's entry is instead `{"depths": {"<depth>": {"mean", "std",
"runs"}}, "runs": [...]}`, each row carrying its `"depth"`: accuracies of different depths are never
averaged together, and the json has `"depths": [int]`.
`run_dir` is the run folder's name: run folders sit next to the comparison folder, under `runs_dir`.
`status` is the summary's (`completed`, `interrupted`), `nonfinite` where a non-finite value stopped
the run before it wrote a summary, or `missing` where the run folder has lost its summary. Means and
spreads are over completed runs only: a diverged or interrupted run has no final accuracy to average,
and the table says how many runs each mean covers.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

METRICS = ("val/acc", "val/loss")


@dataclass
class Run:
    """One init x seed of a comparison, finished or stopped."""

    init: str
    seed: int
    run_dir: Path
    error: str | None = None  # why there is no summary.json: the non-finite value that stopped the run
    depth: int | None = None  # model.depth, in a depth sweep

    def summary(self) -> dict | None:
        path = self.run_dir / "summary.json"
        return json.loads(path.read_text()) if path.is_file() else None


def collect(name: str, experiment: str | None, overrides, inits, seeds, runs: list[Run], depths=()) -> dict:
    results = {}
    for init in inits:
        rows = [_row(run) for run in runs if run.init == init]
        if depths:
            by_depth = {str(d): _spread([row for row in rows if row["depth"] == d]) for d in depths}
            results[init] = {"depths": by_depth, "runs": rows}
        else:
            results[init] = _spread(rows)
    found = {
        "name": name,
        "experiment": experiment,
        "overrides": list(overrides),
        "inits": list(inits),
        "seeds": list(seeds),
        "results": results,
    }
    return found | ({"depths": list(depths)} if depths else {})


def _spread(rows: list[dict]) -> dict:
    """Mean and standard deviation over the completed runs of `rows` (seeds), and the rows."""
    completed = [row for row in rows if row["status"] == "completed"]
    return {
        "mean": {key: _mean([row[key] for row in completed]) for key in METRICS},
        "std": {key: _std([row[key] for row in completed]) for key in METRICS},
        "runs": rows,
    }


def _row(run: Run) -> dict:
    summary = run.summary() or {}
    final = summary.get("final", {})
    return {
        "seed": run.seed,
        **({"depth": run.depth} if run.depth is not None else {}),
        "run_dir": run.run_dir.name,
        "status": summary.get("status", "nonfinite" if run.error else "missing"),
        "error": run.error,
        **{key: final.get(key) for key in METRICS},
    }


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(values) if values else None


def _std(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.stdev(values) if len(values) > 1 else None


def markdown(results: dict) -> str:
    """A table a README or a pull request can quote, with the figures under it."""
    lines = [
        f"# {results['name']}",
        "",
        f"experiment: {results['experiment'] or 'none (the defaults)'}; "
        f"overrides: `{' '.join(results['overrides']) or 'none'}`; "
        f"seeds: {', '.join(str(s) for s in results['seeds'])}",
        "",
    ]
    if "depths" in results:
        return "\n".join(lines + _depth_table(results))
    lines += [
        "| init | completed runs | val/acc | val/error % | val/loss | val/acc per seed |",
        "|---|---|---|---|---|---|",
    ]
    for init, result in results["results"].items():
        mean, std = result["mean"], result["std"]
        acc, loss = (_pm(mean[key], std[key]) for key in METRICS)
        error = _pm(*_error_percent(mean["val/acc"], std["val/acc"]), digits=1)
        runs = result["runs"]
        completed = f"{sum(row['status'] == 'completed' for row in runs)}/{len(runs)}"
        per_seed = ", ".join(f"{row['seed']}: {_cell(row)}" for row in runs)
        lines.append(f"| {init} | {completed} | {acc} | {error} | {loss} | {per_seed} |")
    lines += [
        "",
        "![error vs epoch](plots/error_vs_epoch.png)",
        "",
        "![variance vs depth](plots/variance_vs_depth.png)",
        "",
    ]
    return "\n".join(lines)


def _depth_table(results: dict) -> list[str]:
    """Validation accuracy, init x depth: mean ± std over seeds, completed runs of all, and per seed."""
    depths = results["depths"]
    lines = [
        "| init | " + " | ".join(f"{d} layers: val/acc" for d in depths) + " |",
        "|---|" + "---|" * len(depths),
    ]
    for init, result in results["results"].items():
        cells = []
        for depth in depths:
            found = result["depths"][str(depth)]
            runs = found["runs"]
            completed = sum(row["status"] == "completed" for row in runs)
            per_seed = ", ".join(_cell(row) for row in runs)
            mean = _pm(found["mean"]["val/acc"], found["std"]["val/acc"])
            cells.append(f"{mean} ({completed}/{len(runs)}: {per_seed})")
        lines.append(f"| {init} | " + " | ".join(cells) + " |")
    return lines + ["", "![error and correlation vs depth](plots/depth.png)", ""]


def _error_percent(acc_mean: float | None, acc_std: float | None) -> tuple[float | None, float | None]:
    """Top-1 error in percent, the paper's unit, and its spread."""
    return (None if acc_mean is None else 100 * (1 - acc_mean), None if acc_std is None else 100 * acc_std)


def _pm(mean: float | None, std: float | None, digits: int = 3) -> str:
    if mean is None:
        return "–"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _cell(row: dict) -> str:
    if row["status"] == "completed" and row["val/acc"] is not None:
        return f"{row['val/acc']:.3f}"
    return row["status"]
