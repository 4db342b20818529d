"""What the bench writes and prints: `bench.json` (every repeat, the medians, the machine, the command) and
a rich table of the headline numbers against their targets.

Ratios are taken within each repetition (the template's run over the plain loop's run of the same one)
and their median reported: pairing cancels the slow drift of a shared machine's load, the median its
spikes. The spread (min and max over repetitions) is printed next to it, so a noisy machine shows.
"""

from __future__ import annotations

import math
import platform
import statistics
from datetime import datetime, timezone
from pathlib import Path

import lightning
import torch
from rich.console import Console
from rich.table import Table

from template import provenance, run_folder

# metric: (numerator, denominator, key of the per-repeat records) -- a ratio of two measurements.
RATIOS = {
    "parity_ratio": ("template", "plain", "images_per_s"),
    "monitor_overhead_ratio": ("template", "template_no_monitor", "images_per_s"),
    "loader_speedup": ("loader_device", "loader_torchvision", "images_per_s"),
}
# The same ratios in CPU time, on a CPU only: steadier on a shared machine (see training.Measurement).
CPU_RATIOS = {
    "parity_ratio_cpu_time": ("template", "plain", "images_per_cpu_s"),
    "monitor_overhead_ratio_cpu_time": ("template", "template_no_monitor", "images_per_cpu_s"),
}
# metric: (measurement, key) -- one measurement's own value.
VALUES = {
    "startup_s": ("startup", "seconds"),
    "gpu_images_per_s": ("resnet18_bf16_template", "images_per_s"),
    "gpu_mfu": ("resnet18_bf16_template", "mfu"),
    "gpu_plain_images_per_s": ("resnet18_bf16_plain", "images_per_s"),
    "gpu_plain_mfu": ("resnet18_bf16_plain", "mfu"),
}
TARGETS = {
    "parity_ratio": (">=", 0.98),
    "monitor_overhead_ratio": (">=", 0.98),
    "loader_speedup": (">=", 2.0),
    "startup_s": ("<=", 10.0),
}


def metrics(measurements: dict[str, list[dict]], device: torch.device) -> dict[str, dict]:
    """The headline numbers from the per-repeat records, for the measurements that were taken."""
    found = {}
    ratios = {**RATIOS, **CPU_RATIOS} if device.type == "cpu" else RATIOS
    for name, (top, bottom, key) in ratios.items():
        if top in measurements and bottom in measurements:
            pairs = zip(measurements[top], measurements[bottom], strict=True)
            found[name] = _metric(name, [a[key] / b[key] for a, b in pairs])
    for name, (measurement, key) in VALUES.items():
        records = measurements.get(measurement, [])
        if records and all(record.get(key) is not None for record in records):
            found[name] = _metric(name, [record[key] for record in records])
    return found


def _metric(name: str, repeats: list[float]) -> dict:
    median = statistics.median(repeats)
    entry = {"median": median, "min": min(repeats), "max": max(repeats), "repeats": repeats}
    if name in TARGETS:
        sign, bound = TARGETS[name]
        entry["target"] = f"{sign} {bound:g}"
        entry["met"] = median >= bound if sign == ">=" else median <= bound
    return entry


def hardware(device: torch.device) -> dict:
    return {
        "cpu": provenance.cpu_model(),
        "cpu_count": provenance.cpu_count(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "device": device.type,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write(folder: Path, command: str, options: dict, device: torch.device, measurements: dict) -> dict:
    """bench.json in `folder`, written atomically; returns its content."""
    payload = {
        "command": command,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "options": options,
        "hardware": hardware(device),
        "provenance": provenance.collect(),
        "metrics": metrics(measurements, device),
        "measurements": {
            name: {"median": _medians(records), "repeats": records} for name, records in measurements.items()
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    run_folder.write_json(folder / "bench.json", payload)
    return payload


def _medians(records: list[dict]) -> dict[str, float]:
    keys = [key for key, value in records[0].items() if isinstance(value, int | float)]
    return {
        key: statistics.median(record[key] for record in records)
        for key in keys
        if all(isinstance(record.get(key), int | float) for record in records)
    }


def table(payload: dict) -> Table:
    hw = payload["hardware"]
    where = hw["gpu"] or f"{hw['cpu']}, {hw['threads']} threads"
    result = Table(
        title=f"make bench: {where}, torch {hw['torch']}, medians of {payload['options']['repeats']}"
    )
    for column in ("metric", "median", "min", "max", "target", "met"):
        result.add_column(column, justify="left" if column == "metric" else "right")
    for name, entry in payload["metrics"].items():
        met = entry.get("met")
        result.add_row(
            name,
            _number(entry["median"]),
            _number(entry["min"]),
            _number(entry["max"]),
            entry.get("target", ""),
            "" if met is None else ("yes" if met else "[red]no[/red]"),
        )
    for name, entry in payload["measurements"].items():
        if "images_per_s" in entry["median"]:
            values = [record["images_per_s"] for record in entry["repeats"]]
            result.add_row(
                f"{name} images/s",
                _number(entry["median"]["images_per_s"]),
                _number(min(values)),
                _number(max(values)),
                "",
                "",
            )
    return result


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"


def show(payload: dict) -> None:
    Console(width=110).print(table(payload))
