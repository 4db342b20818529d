"""`make bench`: how fast the template trains next to a plain PyTorch loop, what the variance monitor
costs, how fast the on-device loader augments next to torchvision's, and how long a run takes to start.

    python -m template bench [model=plain depth=11 width=16 batch_size=128 steps=50 repeats=5 device=cpu]

Everything runs in this one process, interleaved: each repetition runs every measurement once (plain
loop, template, template without monitor, [on a GPU: ResNet-18 bf16 plain, template], device loader,
torchvision loader, startup; every other repetition in reverse order), so a change in the machine's
load lands on all of them rather than on one. Medians and every repetition go to
`runs_dir/bench-<time>/bench.json`, with the machine, the date and the command; the headline numbers
are printed as a table (`report.py`).

Why the template side logs to W&B (offline, into a temporary folder) by default: it is what `make train`
does, and its per-step cost (the logger's writes every `log_every_n_steps`, the monitor's histograms)
belongs to the template's price. `wandb.init` itself happens before the timed window and is counted in
`startup_s` instead. `logger=none` measures the template without it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import torch

from template import run_folder
from template.bench import flops, loader, report, startup
from template.bench.inputs import NUM_CLASSES, Setup
from template.bench.options import Options, parse
from template.bench.training import Measurement, plain_loop, template_loop
from template.train import build_model


def main(overrides: list[str]) -> int:
    """The CLI: key=value options (`options.py`); prints the table and the bench.json path."""
    options = parse(overrides)
    os.environ.setdefault("WANDB_SILENT", "true")  # W&B's banners only; it logs as usual
    if options.threads:
        torch.set_num_threads(options.threads)
    payload, path = run(options, " ".join(["python -m template bench", *overrides]))
    report.show(payload)
    print(f"bench.json: {path}")
    return 0


def run(options: Options, command: str) -> tuple[dict, Path]:
    """Every measurement, `options.repeats` times interleaved; returns bench.json's content and path."""
    folder = run_folder.unused(Path(options.runs_dir).resolve() / f"bench-{datetime.now():%Y%m%d-%H%M%S}")
    with tempfile.TemporaryDirectory(prefix="template-bench-") as scratch:
        plan = _plan(options, Path(scratch))
        measurements: dict[str, list[dict]] = {name: [] for name in plan}
        for repeat in range(options.repeats):
            # Every other repetition runs in reverse order: a load that rises or falls steadily then
            # favours each side of a pair equally often.
            order = list(plan.items()) if repeat % 2 == 0 else list(plan.items())[::-1]
            for name, measure in order:
                print(f"bench [{repeat + 1}/{options.repeats}] {name}", flush=True)
                measurements[name].append(measure(repeat))
    payload = report.write(folder, command, asdict(options), options.torch_device, measurements)
    return payload, folder / "bench.json"


def _plan(options: Options, scratch: Path) -> dict:
    """name -> function of the repetition index returning that repetition's record; built (data made,
    weights initialised) before anything is timed."""
    device = options.torch_device
    model_keys = [
        f"model.name={options.model}",
        f"model.depth={options.depth}",
        f"model.width={options.width}",
    ]
    parity = Setup.create(
        [*model_keys, f"data.batch_size={options.batch_size}"], options.warmup, options.steps, device
    )
    plan = {
        "plain": lambda repeat: _record(plain_loop(parity)),
        "template": lambda repeat: _record(
            template_loop(parity, True, options.logger, scratch / f"template-{repeat}")
        ),
        "template_no_monitor": lambda repeat: _record(
            template_loop(parity, False, options.logger, scratch / f"template-no-monitor-{repeat}")
        ),
    }
    if device.type == "cuda":
        plan.update(_gpu_plan(options, scratch, device))
    data = loader.Images.create(options.loader_size)
    plan["loader_device"] = lambda repeat: loader.device_loader(data, options.batch_size, device)
    plan["loader_torchvision"] = lambda repeat: loader.torchvision_loader(
        data, options.batch_size, options.workers, device
    )
    if options.startup:
        accelerator = "gpu" if device.type == "cuda" else "cpu"
        plan["startup"] = lambda repeat: {
            "seconds": startup.measure(
                options.model, options.depth, options.width, accelerator, scratch / f"startup-{repeat}"
            )
        }
    return plan


def _gpu_plan(options: Options, scratch: Path, device: torch.device) -> dict:
    """ResNet-18 (the usual 64-channel one, with batch norm) in bf16: images/s and MFU, plain and template."""
    keys = [
        "model.name=resnet",
        "model.depth=18",
        "model.width=64",
        "model.norm=batch",
        f"data.batch_size={options.mfu_batch_size}",
        "trainer.precision=bf16-mixed",
    ]
    setup = Setup.create(keys, options.warmup, options.steps, device)
    per_image = flops.flops_per_image(build_model(setup.cfg, NUM_CLASSES), NUM_CLASSES)
    peak = flops.peak_tflops(torch.cuda.get_device_name(device), options.peak_tflops)

    def with_mfu(measurement: Measurement) -> dict:
        record = _record(measurement)
        record.update(
            flops_per_image=per_image,
            peak_tflops=peak,
            mfu=flops.mfu(per_image, measurement.images_per_s, peak),
        )
        return record

    return {
        "resnet18_bf16_plain": lambda repeat: with_mfu(plain_loop(setup)),
        "resnet18_bf16_template": lambda repeat: with_mfu(
            template_loop(setup, True, options.logger, scratch / f"resnet18-{repeat}")
        ),
    }


def _record(measurement: Measurement) -> dict:
    return {
        **asdict(measurement),
        "images_per_s": measurement.images_per_s,
        "images_per_cpu_s": measurement.images_per_cpu_s,
    }
