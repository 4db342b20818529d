"""`python -m template phase [key=value ...]` (`make phase`): the phase diagram of the model's activation
and, with `phase.sweep=true`, a trainability sweep drawn over it.

The diagram (Poole et al. 2016, Schoenholz et al. 2017): on a grid of (σ²_w, σ²_b), the length map's
fixed point q*, χ₁ = σ²_w E[φ′(√q* z)²] and the depth scale ξ_c = −1/ln χ_c of correlations, drawn as
contours, with the critical line (stable fixed points with χ₁ = 1: ordered phase left of it, chaotic
right), χ₁ = 1 on the unstable branch and the saddle-node lines, from `fixed_points`.

The sweep: for each depth × σ²_w of `phase.depths` × `phase.weight_vars`, one ordinary short run of the
rest of the config (`init=meanfield` at that σ²_w and `phase.bias_var`), its final val/acc drawn as a
heatmap over the 6·ξ_c line: Schoenholz et al. found nets train up to about that depth. The runs go
through `engine` on submitit — local processes, or a SLURM job array with `phase.executor=slurm` — and
their results stay on disk, so the same command started again runs only what is missing.

Outputs, in `phase.folder` (default `runs_dir/phase-<experiment>-<activation>`): `phase.json` (the grid
and, with the sweep, every point's record), `phase_diagram.png`, and the sweep's points and run folders.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from template import config
from template.errors import UsageError
from template.models import activations
from template.run import folder as run_folder
from template.run import provenance
from template.sweep import engine, plots
from template.theory import fixed_points, meanfield

ITERATIONS = (
    400  # of the length and correlation maps on the grid; ξ_c past a few hundred layers is drawn as is
)


def grid_theory(phi, weight_vars: np.ndarray, bias_vars: np.ndarray) -> dict[str, np.ndarray]:
    """q*, χ₁ and ξ_c on the grid (rows σ²_b, columns σ²_w), every point iterated at once; the
    correlation map only where it has a fixed point below 1 (the chaotic phase)."""
    w, b = (torch.as_tensor(a, dtype=torch.float64) for a in np.meshgrid(weight_vars, bias_vars))
    q = torch.ones_like(w)
    for _ in range(ITERATIONS):
        following = meanfield.length_map(phi, q, w, b).clamp(max=1e12)
        done = ((following - q).abs() <= 1e-12 * q.clamp(min=1)).all()
        q = following
        if done:
            break
    chi1 = meanfield.chi(phi, q, w)
    chi_c = chi1.clone()
    chaotic = (chi1 > 1) & (q < 1e12)
    if chaotic.any():
        qc, wc, bc = q[chaotic], w[chaotic], b[chaotic]
        c = torch.full_like(qc, 0.5)
        for _ in range(ITERATIONS):
            following = (meanfield.length_map_ab(phi, qc, c * qc, wc, bc) / qc).clamp(-1, 1)
            done = ((following - c).abs() < 1e-10).all()
            c = following
            if done:
                break
        chi_c[chaotic] = wc * meanfield.cross_moment(meanfield.derivative(phi), qc, c * qc)
    with np.errstate(divide="ignore"):
        xi = np.where(chi_c.numpy() == 1, np.inf, -1 / np.log(chi_c.numpy()))
    xi = np.where(q.numpy() >= 1e12, np.nan, xi)  # the length map diverges (ReLU above σ²_w = 2)
    return {"q_star": q.numpy(), "chi1": chi1.numpy(), "depth_scale": xi}


def critical_line(phi, bias_vars: np.ndarray) -> np.ndarray:
    return lines(phi, bias_vars)["critical_line"]


def lines(phi, bias_vars: np.ndarray) -> dict[str, np.ndarray]:
    """σ²_w per σ²_b (NaN where absent) of the fixed-point structure's lines: the critical line (stable,
    χ₁ = 1), χ₁ = 1 on the unstable branch, and the first two saddle-nodes (where fixed points are born
    and die in pairs: GELU's and SiLU's stable fixed point ends at the first)."""
    found = [fixed_points.structure(phi, float(b)) for b in bias_vars]

    def column(points) -> np.ndarray:
        return np.array([p.weight_var if p is not None else np.nan for p in points])

    return {
        "critical_line": column(s.stable_critical for s in found),
        "unstable_critical": column(next((p for p in s.critical if not p.stable), None) for s in found),
        "saddle_node_1": column(s.saddle_nodes[0] if s.saddle_nodes else None for s in found),
        "saddle_node_2": column(s.saddle_nodes[1] if len(s.saddle_nodes) > 1 else None for s in found),
    }


def points(cfg: DictConfig) -> list[dict]:
    return [
        {"key": f"d{depth}-w{weight_var:g}", "depth": int(depth), "weight_var": float(weight_var)}
        for depth in cfg.phase.depths
        for weight_var in cfg.phase.weight_vars
    ]


def point_overrides(base: list[str], cfg: DictConfig, point: dict, folder: Path) -> list[str]:
    return [
        *base,
        f"model.depth={point['depth']}",
        "init.name=meanfield",
        f"init.options.weight_var={point['weight_var']}",
        f"init.options.bias_var={cfg.phase.bias_var}",
        f"init.options.distribution={cfg.phase.distribution}",
        f"runs_dir={folder / 'runs'}",
        f"run_name={point['key']}",
    ]


def thread_share(executor: str, parallel: int) -> int | None:
    """torch threads for each of the local executor's `parallel` processes: the cores shared out. Left to
    torch (None) elsewhere — in this process (debug), or a SLURM task on cores of its own. Each process at
    torch's default (every core) would oversubscribe the machine, and a torch thread that waits for a core
    spins: two 2-thread runs on 2 cores took 12 times as long a step as one."""
    return max(1, (os.cpu_count() or 1) // parallel) if executor == "local" else None


def train_point(point: dict) -> dict:
    """One point of the sweep, in the job's process: an ordinary run; its final accuracy."""
    from template.train import train

    if point.get("threads"):
        torch.set_num_threads(point["threads"])

    run_dir = train(config.load(point["overrides"]))
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"val/acc": summary["final"]["val/acc"], "steps": summary["steps"], "run_dir": run_dir.name}


def main(overrides: list[str]) -> int:
    for override in overrides:
        if override.partition("=")[0].strip() in ("model.depth", "init", "init.name", "run_name", "resume"):
            raise UsageError(
                f"{override.partition('=')[0]}= is set by the sweep for each point; use phase.depths"
            )
    cfg = config.load(overrides)
    phase = cfg.phase
    phi = activations.make(cfg.model.activation, cfg.model.negative_slope)
    weight_vars = np.linspace(*phase.weight_var_range, phase.resolution)
    bias_vars = np.linspace(*phase.bias_var_range, phase.resolution)
    folder = Path(
        phase.folder or Path(cfg.runs_dir) / f"phase-{cfg.experiment or 'default'}-{cfg.model.activation}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    theory = grid_theory(phi, weight_vars, bias_vars)
    structure = lines(phi, bias_vars)
    record = {
        "activation": cfg.model.activation,
        "weight_vars": weight_vars.tolist(),
        "bias_vars": bias_vars.tolist(),
        **{
            key: np.where(np.isfinite(v), v, -1).tolist() for key, v in theory.items()
        },  # -1: inf or undefined
        **{key: [None if not math.isfinite(w) else w for w in v.tolist()] for key, v in structure.items()},
        "provenance": provenance.collect(),
    }
    sweep = None
    if phase.sweep:
        started = time.monotonic()
        threads = thread_share(phase.executor, phase.parallel)
        todo = [
            {**p, "overrides": point_overrides(overrides, cfg, p, folder), "threads": threads}
            for p in points(cfg)
        ]
        for p in todo:  # every point's config is checked before anything runs
            config.load(p["overrides"])
        records = engine.run(todo, train_point, folder, phase.executor, phase.parallel, phase.timeout_min,
                             OmegaConf.to_container(phase.slurm))  # fmt: skip
        sweep_line = [fixed_points.depth_scale(phi, float(w), phase.bias_var) for w in phase.weight_vars]
        sweep = {
            "depths": list(phase.depths),
            "weight_vars": list(phase.weight_vars),
            "bias_var": phase.bias_var,
            "depth_scale": [x if math.isfinite(x) else None for x in sweep_line],
            "points": records,
            "seconds": round(time.monotonic() - started, 1),
        }
        record["sweep"] = sweep
        failed = [key for key, r in records.items() if r["status"] != "completed"]
        print(
            f"sweep: {len(records) - len(failed)} completed, {len(failed)} failed {failed or ''} "
            f"in {sweep['seconds']} s"
        )
    run_folder.write_json(folder / "phase.json", record)
    (folder / "phase_diagram.png").write_bytes(plots.phase_diagram(record, theory, structure, sweep))
    print(f"phase diagram: {folder / 'phase_diagram.png'}")
    return 0
