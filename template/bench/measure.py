"""`make bench`: the template's training speed next to a plain PyTorch loop (`timing.py`), what the
variance monitor costs, what a bare Lightning loop costs on its own (`bare.py`), the on-device loader
against the default DataLoader path and torchvision's PIL recipe (`loaders.py`), start-up time, and on a
GPU ResNet-18's bf16 throughput and model FLOP utilisation (`flops.py`).

    make bench DEPTH=30 ARGS="bench.repeats=9"   # = python -m template bench model.depth=30 bench.repeats=9

The same keys as `make train`: the model, init, optimizer, schedule, batch size, logger and accelerator
are the run's (on synthetic data, so nothing is downloaded); `bench.*` holds the bench's own knobs. All
runs in this process, interleaved: the plain loop and the template take turns step by step (`timing.py`),
and each repetition runs every measurement once, every other repetition in reverse order, so a change in
the machine's load lands on all of them. Medians and every repetition go to
`runs_dir/bench-<time>/bench.json`. The template side runs as `make train` runs it: train's
`speed_up`, its progress bar, and the configured logger (W&B offline by default, into a temporary
folder, its writer process counted in the CPU seconds): their per-step cost is part of the template's
price; `wandb.init` itself comes before the timed window and counts in `startup_s`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from template import config
from template.bench import flops, report
from template.bench.bare import bare_side
from template.bench.loaders import loader_epoch, pil_loader
from template.bench.timing import Setup, side_by_side, synthetic
from template.run import folder as run_folder
from template.run.folder import RUN_DIR_ENV
from template.train import on_gpu

# On a GPU: the usual 64-channel ResNet-18 with batch norm in bf16, whatever model the keys name.
GPU_MODEL = ["model=resnet", "model.depth=18", "model.width=64", "model.norm=batch"]


def main(overrides: list[str]) -> int:
    cfg = config.load(overrides)
    os.environ.setdefault("WANDB_SILENT", "true")  # W&B's banners only; it logs as usual
    if cfg.bench.threads:
        torch.set_num_threads(cfg.bench.threads)
    payload, path = run(cfg, " ".join(["python -m template bench", *overrides]), overrides)
    report.show(payload)
    print(f"bench.json: {path}")
    return 0


def run(cfg: DictConfig, command: str, overrides: list[str] = ()) -> tuple[dict, Path]:
    """Every measurement, `bench.repeats` times interleaved; returns bench.json's content and path."""
    device = torch.device("cuda" if on_gpu(cfg) else "cpu")
    folder = run_folder.unused(Path(cfg.runs_dir).resolve() / f"bench-{datetime.now():%Y%m%d-%H%M%S}")
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        plan = _plan(cfg, list(overrides), device, Path(scratch))
        measurements: dict[str, list[dict]] = {}
        for repeat in range(cfg.bench.repeats):
            order = list(plan.items()) if repeat % 2 == 0 else list(plan.items())[::-1]
            for name, measure in order:
                print(f"bench [{repeat + 1}/{cfg.bench.repeats}] {name}", flush=True)
                for key, record in measure(repeat).items():
                    measurements.setdefault(key, []).append(record)
    options = {key: OmegaConf.to_container(cfg[key]) for key in ("bench", "model", "data", "logger")}
    payload = report.write(folder, command, options, device, measurements)
    return payload, folder / "bench.json"


def _plan(cfg: DictConfig, overrides: list[str], device: torch.device, scratch: Path) -> dict:
    """name -> function of the repetition index returning {measurement: record}; everything is built
    (data made, weights initialised) before anything is timed."""
    parity = Setup.create(cfg, device)

    def lockstep(monitor: bool, suffix: str):
        def measure(repeat: int) -> dict:
            pair = side_by_side(parity, monitor, scratch / f"template{suffix}-{repeat}")
            return {f"template{suffix}": pair.template, f"plain{suffix}": pair.plain}

        return measure

    plan = {"template": lockstep(True, ""), "template_no_monitor": lockstep(False, "_no_monitor")}

    def bare(repeat: int) -> dict:
        pair = bare_side(parity, scratch / f"bare-{repeat}")
        return {"bare": pair.template, "plain_bare": pair.plain}

    plan["bare"] = bare
    if device.type == "cuda":
        plan["resnet18_bf16"] = gpu_plan(overrides, cfg.bench.mfu_batch_size, device, scratch)
    for loader in ("device", "torch"):
        module = synthetic(cfg, cfg.bench.loader_size, loader, device)
        train = module.train_dataloader()
        plan[f"loader_{loader}"] = lambda repeat, train=train, loader=loader: {
            f"loader_{loader}": loader_epoch(train, device)
        }
    pil = pil_loader(module)
    plan["loader_pil"] = lambda repeat: {"loader_pil": loader_epoch(pil, device)}
    if cfg.bench.startup:
        plan["startup"] = lambda repeat: {
            "startup": {"seconds": startup_seconds(overrides, scratch / f"startup-{repeat}")}
        }
    return plan


def gpu_plan(overrides: list[str], batch_size: int, device: torch.device, scratch: Path):
    """ResNet-18 in bf16, plain and template in lockstep: images/s, and MFU from its counted FLOPs."""
    keys = [*GPU_MODEL, "trainer.precision=bf16-mixed", f"data.batch_size={batch_size}"]
    setup = Setup.create(config.load([*overrides, *keys]), device)
    per_image = flops.flops_per_image(setup.fresh_model(), setup.batches[0])
    peak = flops.peak_tflops(torch.cuda.get_device_name(device), setup.cfg.bench.peak_tflops)

    def with_mfu(record: dict) -> dict:
        mfu = None if peak is None else per_image * record["images_per_s"] / (peak * 1e12)  # achieved / peak
        return {**record, "flops_per_image": per_image, "peak_tflops": peak, "mfu": mfu}

    def measure(repeat: int) -> dict:
        pair = side_by_side(setup, True, scratch / f"gpu-{repeat}")
        return {
            "resnet18_bf16_template": with_mfu(pair.template),
            "resnet18_bf16_plain": with_mfu(pair.plain),
        }

    return measure


MARK = "BENCH_FIRST_STEP"
ONE_STEP = ("data=synthetic", "trainer.max_steps=1", "trainer.limit_val_batches=2")
PROBE = f"""
import sys, time
from template.module import Classifier
def first_step(self, batch, batch_idx):
    if not getattr(Classifier, "_seen", False):
        Classifier._seen = True
        print("{MARK}", repr(time.time()), flush=True)
Classifier.on_train_batch_start = first_step
from template.__main__ import main
sys.exit(main(sys.argv[1:]))
"""  # run with `python -c`: the child imports what `python -m template` imports, not the bench


def startup_seconds(overrides: list[str], runs_dir: Path) -> float:
    """`startup_s`: seconds from launching `python -m template train <the bench's keys> data=synthetic`
    to its first step, in a fresh process whose `Classifier.on_train_batch_start` prints the wall clock
    the first time: interpreter, imports, config, data, model, init, run folder, W&B, Trainer, sanity
    check and loader workers — everything a user waits for."""
    command = [sys.executable, "-c", PROBE, "train", *overrides, *ONE_STEP, f"runs_dir={runs_dir}"]
    env = {key: value for key, value in os.environ.items() if key != RUN_DIR_ENV}
    started = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    marks = [line.split()[1] for line in result.stdout.splitlines() if line.startswith(MARK)]
    if result.returncode != 0 or not marks:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"startup probe failed (exit code {result.returncode}): {' | '.join(tail)}")
    return float(marks[0]) - started
