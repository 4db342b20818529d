"""bench.json (every repeat, the medians, the machine, the command) and the printed table. Ratios are
paired within each repetition and their median reported: pairing cancels a shared machine's slow drift,
the median its spikes; the interquartile range, min and max show how noisy it was.

Each parity ratio comes twice: of images per wall-clock second, what a user waits for, and of images
per CPU second (the process's threads and its child processes together), what the template costs. On a
machine shared with other work the first measures the neighbours as much as the code; the second
barely moves with them, as long as torch's threads are not left spinning for a core.
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timezone
from pathlib import Path

import lightning
import torch
from rich.console import Console
from rich.table import Table

from template.run import folder as run_folder
from template.run import provenance

# metric: (numerators, denominators, key): the product of the numerators' values over the denominators'.
# The monitor's overhead is a ratio of two parities, each taken against its own plain loop in lockstep;
# so is the template's own cost over a bare Lightning loop (`bare.py`), whose ratio to its plain loop is
# Lightning's: parity = bare_lightning_ratio x template_vs_bare_ratio.
RATIOS = {
    "parity_ratio": (("template",), ("plain",), "images_per_s"),
    "parity_cpu_ratio": (("template",), ("plain",), "images_per_cpu_s"),
    "monitor_overhead_ratio": (
        ("template", "plain_no_monitor"),
        ("plain", "template_no_monitor"),
        "images_per_s",
    ),
    "monitor_overhead_cpu_ratio": (
        ("template", "plain_no_monitor"),
        ("plain", "template_no_monitor"),
        "images_per_cpu_s",
    ),
    "bare_lightning_ratio": (("bare",), ("plain_bare",), "images_per_s"),
    "bare_lightning_cpu_ratio": (("bare",), ("plain_bare",), "images_per_cpu_s"),
    "template_vs_bare_ratio": (("template", "plain_bare"), ("plain", "bare"), "images_per_s"),
    "loader_speedup": (("loader_device",), ("loader_torch",), "images_per_s"),
    "loader_speedup_vs_pil": (("loader_device",), ("loader_pil",), "images_per_s"),
    "torch_loader_vs_pil": (("loader_torch",), ("loader_pil",), "images_per_s"),
}
VALUES = {  # metric: (measurement, key)
    "plain_images_per_s": ("plain", "images_per_s"),
    "template_images_per_s": ("template", "images_per_s"),
    "background_share": ("template", "background_share"),
    "startup_s": ("startup", "seconds"),
    "gpu_images_per_s": ("resnet18_bf16_template", "images_per_s"),
    "gpu_mfu": ("resnet18_bf16_template", "mfu"),
    "gpu_plain_mfu": ("resnet18_bf16_plain", "mfu"),
}


def _per_step(record: dict, logging: bool | None = None) -> float | None:
    """The median over turns of the seconds per step the side spent over its plain loop (every turn, or
    only those that held a monitor logging step, or only those that did not); None without such turns."""
    turns = [t for t in record["turns"] if logging is None or t["logging_step"] == logging]
    return statistics.median((t["template_s"] - t["plain_s"]) / t["steps"] for t in turns) if turns else None


def _monitor_step(on: dict, off: dict) -> float | None:
    with_monitor, without = _per_step(on, logging=False), _per_step(off, logging=False)
    return None if None in (with_monitor, without) else with_monitor - without


def _logging_step(record: dict) -> float | None:
    """The monitor's logging step over the side's ordinary step: each logging turn's excess over its
    plain turn less its steps at the ordinary excess, averaged over the logging turns; None where the
    window holds no logging step or nothing else."""
    ordinary = _per_step(record, logging=False)
    turns = [t for t in record["turns"] if t["logging_step"]]
    if ordinary is None or not turns:
        return None
    return statistics.fmean(t["template_s"] - t["plain_s"] - t["steps"] * ordinary for t in turns)


# metric: (measurements, cost in seconds from their records of one repetition), reported in ms. Each
# turn's excess over the plain turn beside it is the side's own per-step cost, free of the machine's
# drift; medians over the turns drop the one-off steps (Lightning's logging, a scheduler hiccup).
STEP_COSTS = {
    "lightning_step_ms": (("bare",), _per_step),
    "template_step_ms": (("template_no_monitor",), lambda side: _per_step(side, logging=False)),
    "monitor_step_ms": (("template", "template_no_monitor"), _monitor_step),
    "monitor_logging_step_ms": (("template",), _logging_step),
}
TARGETS = {
    "parity_ratio": 0.98,
    "parity_cpu_ratio": 0.98,
    "monitor_overhead_ratio": 0.99,  # the monitor costs at most 1 %
    "monitor_overhead_cpu_ratio": 0.99,
    "loader_speedup": 2.0,
    "startup_s": -10.0,
}


def metrics(measurements: dict[str, list[dict]]) -> dict[str, dict]:
    """The headline numbers, per repeat and summarised, for the measurements that were taken. A
    negative target is an upper bound (seconds), a positive one a lower bound (ratios)."""
    found = {}
    for name, (tops, bottoms, key) in RATIOS.items():
        if all(part in measurements for part in (*tops, *bottoms)):
            found[name] = [
                math.prod(record[key] for record in records[: len(tops)])
                / math.prod(record[key] for record in records[len(tops) :])
                for records in zip(*(measurements[part] for part in (*tops, *bottoms)), strict=True)
            ]
    for name, (parts, cost) in STEP_COSTS.items():
        if all("turns" in record for part in parts for record in measurements.get(part, [{}])):
            costs = [cost(*records) for records in zip(*(measurements[part] for part in parts), strict=True)]
            if None not in costs:
                found[name] = [1e3 * seconds for seconds in costs]
    for name, (measurement, key) in VALUES.items():
        values = [record.get(key) for record in measurements.get(measurement, [])]
        if values and None not in values:
            found[name] = values
    summary = {}
    for name, repeats in found.items():
        median = statistics.median(repeats)
        summary[name] = {"median": median, "iqr": _iqr(repeats), "min": min(repeats), "max": max(repeats)}
        summary[name]["repeats"] = repeats
        if name in TARGETS:
            bound = TARGETS[name]
            summary[name]["target"] = f"<= {-bound:g}" if bound < 0 else f">= {bound:g}"
            summary[name]["met"] = median <= -bound if bound < 0 else median >= bound
    return summary


def _iqr(values: list[float]) -> float:
    """Interquartile range, quartiles interpolated as numpy's default does; 0 for one value."""
    if len(values) < 2:
        return 0.0
    low, _, high = statistics.quantiles(values, n=4, method="inclusive")
    return high - low


def write(folder: Path, command: str, options: dict, device: torch.device, measurements: dict) -> dict:
    """bench.json in `folder`, written atomically; returns its content."""
    hardware = {
        "cpu": provenance.cpu_model(),
        "cpu_count": provenance.cpu_count(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "device": device.type,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
    }
    payload = {
        "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "options": options,
        "hardware": hardware,
        "provenance": provenance.collect(),
        "metrics": metrics(measurements),
        "measurements": measurements,
    }
    folder.mkdir(parents=True, exist_ok=True)
    run_folder.write_json(folder / "bench.json", payload)
    return payload


def show(payload: dict) -> None:
    hw = payload["hardware"]
    where = hw["gpu"] or f"{hw['cpu']}, {hw['threads']} threads"
    table = Table(
        title=f"make bench: {where}, torch {hw['torch']}, medians of {payload['options']['bench']['repeats']}"
    )
    for column in ("metric", "median", "IQR", "min", "max", "target", "met"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, entry in payload["metrics"].items():
        met = {None: "", True: "yes", False: "[red]no[/red]"}[entry.get("met")]
        numbers = (
            f"{entry[key]:.3f}" if abs(entry[key]) < 100 else f"{entry[key]:,.0f}"
            for key in ("median", "iqr", "min", "max")
        )
        table.add_row(name, *numbers, entry.get("target", ""), met)
    Console(width=110).print(table)
