"""`make compare`: train every init x seed of one experiment, then set them side by side — He et al. 2015's
figure (validation error against epoch, one curve per init) and the variance at initialisation behind it.

    make compare EXPERIMENT=he2015_30layer INITS="kaiming glorot" SEEDS="0 1 2"
    python -m template compare experiment=he2015_30layer 'compare.inits=[kaiming,glorot]'
    template.compare.run(["experiment=quick_demo", "compare.seeds=[0,1]"])  # -> the comparison folder
    make compare EXPERIMENT=xiao2018   # compare.variants: runs that differ in more than the init's name
    make compare EXPERIMENT=depth_sweep DEPTHS="30 100 200"   # compare.depths: every init at each depth

Each run is an ordinary run — `train(config.load([...]))`, its own folder under `runs_dir`, named after
the comparison and grouped under its name in W&B — trained one after the other in this process, so
start-up is paid once and one run has the machine to itself. Every combination's config is loaded
before anything trains: a bad init name, seed or override is refused in one line with nothing written.
The comparison folder, `runs_dir/compare-<time>-<experiment>/`, holds `results.json`, `results.md` and
`plots/{error_vs_epoch,variance_vs_depth}.png` (with `compare.depths`, also `plots/depth.png`: the final
error and the correlation between inputs at the last layer at init, against depth); it is rewritten
after every run, so a comparison that is interrupted, or whose run diverged, still shows everything
that finished.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig

from template import config
from template.compare import plots, results
from template.compare.results import Run
from template.errors import UsageError
from template.monitor import NonFiniteError
from template.run import folder as run_folder
from template.run import provenance
from template.run.loggers import close_wandb
from template.train import Interrupted, train

# Keys compare sets for each run itself; given on its command line they would silently lose.
PER_RUN_KEYS = ("init", "init.name", "seed", "run_name", "resume")


def main(overrides: list[str]) -> int:
    """The CLI; exit code 0, or the shell's on SIGTERM/Ctrl-C."""
    try:
        folder = run(overrides)
    except Interrupted as stop:
        return stop.exit_code
    print((folder / "results.md").read_text())
    print(f"comparison folder: {folder}")
    return 0


def run(overrides: Sequence[str] = ()) -> Path:
    """Train every `compare.inits` x `compare.seeds`, writing the comparison folder after each run;
    returns the folder.

    Refuses bad input with `UsageError` before anything is written. A run stopped by a non-finite value
    is recorded as `nonfinite` and the comparison goes on: divergence is a result. SIGTERM or Ctrl-C
    stops the comparison (`Interrupted`) once the folder shows the runs so far."""
    overrides = list(overrides)
    for override in overrides:
        key = override.partition("=")[0].strip()
        if key in PER_RUN_KEYS:
            raise UsageError(
                f"{key}= cannot be given to compare: it sets {key} for each run; "
                "list the inits in compare.inits=[a,b] and the seeds in compare.seeds=[0,1]"
            )
    base = config.load(overrides)
    _refuse_multi_process(base)
    if base.compare.depths and any(o.partition("=")[0].strip() == "model.depth" for o in overrides):
        raise UsageError(
            f"model.depth= cannot be given with compare.depths={list(base.compare.depths)}: "
            "the sweep sets each run's depth; list them all in compare.depths"
        )
    chosen_inits, seeds = list(base.compare.inits), list(base.compare.seeds)
    depths = list(base.compare.depths) or [None]  # None: the experiment's own model.depth
    runs_dir = Path(base.runs_dir).resolve()
    stamp = f"compare-{datetime.now():%Y%m%d-%H%M%S}-{base.experiment or 'default'}"
    name = _unused_name(runs_dir, stamp, chosen_inits, seeds, depths)
    variants = base.compare.variants
    plan = [
        (init, depth, seed, _run_config(name, overrides, init, seed, variants, depth))
        for init in chosen_inits
        for depth in depths
        for seed in seeds
    ]
    folder = runs_dir / name
    try:
        (folder / "plots").mkdir(parents=True)
    except OSError as error:
        raise UsageError(
            f"cannot create {folder}: {error.strerror}; set runs_dir= to a writable folder"
        ) from None
    done: list[Run] = []
    started = time.monotonic()
    for index, (init, depth, seed, cfg) in enumerate(plan, start=1):
        at_depth = "" if depth is None else f" depth={depth}"
        print(f"compare [{index}/{len(plan)}] init={init}{at_depth} seed={seed}", flush=True)
        record = Run(init, seed, runs_dir / cfg.run_name, depth=depth)
        try:
            train(cfg)
        except NonFiniteError as error:
            record.error = str(error)
            close_wandb()  # the stopped run's W&B run would otherwise swallow the next run's logs
            print(f"compare: init={init} seed={seed} stopped: {error}", file=sys.stderr)
        except Interrupted:
            done.append(record)
            write(folder, base, overrides, done)
            print(f"interrupted; the comparison of the runs so far is in {folder}", file=sys.stderr)
            raise
        done.append(record)
        write(folder, base, overrides, done)
    print(f"compare: {len(plan)} runs in {time.monotonic() - started:.0f} s", flush=True)
    return folder


def write(folder: Path, base: DictConfig, overrides, done: list[Run]) -> None:
    """results.json, results.md and the figures, from the run folders of `done`."""
    chosen_inits, seeds = list(base.compare.inits), list(base.compare.seeds)
    depths = list(base.compare.depths)
    found = results.collect(folder.name, base.experiment, overrides, chosen_inits, seeds, done, depths)
    run_folder.write_json(folder / "results.json", {**found, "provenance": provenance.collect()})
    (folder / "results.md").write_text(results.markdown(found))
    title = base.experiment or folder.name

    def summaries(init: str, depth: int | None) -> list[dict]:
        return [s for r in done if (r.init, r.depth) == (init, depth) and (s := r.summary())]

    if depths:
        by_depth = {init: {d: summaries(init, d) for d in depths} for init in chosen_inits}
        (folder / "plots" / "depth.png").write_bytes(plots.depth(by_depth, title))
    # one curve per init, or per init and depth in a depth sweep
    curves = {
        init if d is None else f"{init}, {d} layers": summaries(init, d)
        for init in chosen_inits
        for d in depths or [None]
    }
    (folder / "plots" / "error_vs_epoch.png").write_bytes(plots.error_vs_epoch(curves, title))
    (folder / "plots" / "variance_vs_depth.png").write_bytes(plots.variance_vs_depth(curves, title))


def _refuse_multi_process(cfg: DictConfig) -> None:
    """Lightning's DDP starts the other ranks by re-running the command line, which here would re-run
    the whole comparison on every rank; a multi-device run belongs to `make train`."""
    devices, nodes = cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1)
    if devices != 1 or nodes != 1:
        raise UsageError(
            f"compare trains on one device (trainer.devices={devices}, trainer.num_nodes={nodes}); "
            "set trainer.devices=1, or run make train DEVICES=... once per init"
        )


def _run_config(
    name: str, overrides: list[str], init: str, seed: int, variants, depth: int | None = None
) -> DictConfig:
    """The user's overrides between the comparison's defaults (its W&B group, which they may replace)
    and what is set per run: `init.name=<init>`, or a `compare.variants` label's own overrides, and
    `model.depth` in a depth sweep."""
    if init in variants:
        made_of = list(variants[init])
        for override in made_of:
            key = override.partition("=")[0].strip()
            if key in PER_RUN_KEYS[2:] or (depth is not None and key == "model.depth"):
                raise UsageError(
                    f"compare.variants.{init} sets {key}, which compare sets for each run; "
                    "a variant may set any key but seed, run_name and resume (and model.depth in a "
                    "depth sweep)"
                )
    else:
        made_of = [f"init.name={init}"]
    per_run = [*made_of, f"seed={seed}", f"run_name={_run_name(name, init, seed, depth)}"]
    per_run += [] if depth is None else [f"model.depth={depth}"]
    return config.load([f"logger.group={name}", *overrides, *per_run])


def _run_name(name: str, init: str, seed: int, depth: int | None = None) -> str:
    return f"{name}-{init}-s{seed}" if depth is None else f"{name}-{init}-d{depth}-s{seed}"


def _unused_name(runs_dir: Path, name: str, chosen_inits, seeds, depths=(None,)) -> str:
    """Two comparisons started in the same second get `-2`, `-3`, ...: no folder of theirs may exist."""
    candidate, count = name, 1
    while (runs_dir / candidate).exists() or any(
        (runs_dir / _run_name(candidate, init, seed, depth)).exists()
        for init in chosen_inits
        for seed in seeds
        for depth in depths
    ):
        count += 1
        candidate = f"{name}-{count}"
    return candidate
