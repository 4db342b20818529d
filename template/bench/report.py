"""bench.json (every repeat, the medians, the machine, the command) and the printed table. Ratios are
paired within each repetition and their median reported: pairing cancels a shared machine's slow drift,
the median its spikes; min and max show how noisy it was.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timezone
from pathlib import Path

import lightning
import torch
from rich.console import Console
from rich.table import Table

from template import provenance, run_folder

RATIOS = {  # metric: (numerator, denominator), of images per second
    "parity_ratio": ("template", "plain"),
    "monitor_overhead_ratio": ("template", "template_no_monitor"),
    "loader_speedup": ("loader_device", "loader_torch"),
}
VALUES = {  # metric: (measurement, key)
    "startup_s": ("startup", "seconds"),
    "gpu_images_per_s": ("resnet18_bf16_template", "images_per_s"),
    "gpu_mfu": ("resnet18_bf16_template", "mfu"),
    "gpu_plain_mfu": ("resnet18_bf16_plain", "mfu"),
}
TARGETS = {"parity_ratio": 0.98, "monitor_overhead_ratio": 0.98, "loader_speedup": 2.0, "startup_s": -10.0}


def metrics(measurements: dict[str, list[dict]]) -> dict[str, dict]:
    """The headline numbers, per repeat and summarised, for the measurements that were taken. A
    negative target is an upper bound (seconds), a positive one a lower bound (ratios)."""
    found = {}
    for name, (top, bottom) in RATIOS.items():
        if top in measurements and bottom in measurements:
            pairs = zip(measurements[top], measurements[bottom], strict=True)
            found[name] = [a["images_per_s"] / b["images_per_s"] for a, b in pairs]
    for name, (measurement, key) in VALUES.items():
        values = [record.get(key) for record in measurements.get(measurement, [])]
        if values and None not in values:
            found[name] = values
    summary = {}
    for name, repeats in found.items():
        median = statistics.median(repeats)
        summary[name] = {"median": median, "min": min(repeats), "max": max(repeats), "repeats": repeats}
        if name in TARGETS:
            bound = TARGETS[name]
            summary[name]["target"] = f"<= {-bound:g}" if bound < 0 else f">= {bound:g}"
            summary[name]["met"] = median <= -bound if bound < 0 else median >= bound
    return summary


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
    for column in ("metric", "median", "min", "max", "target", "met"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, entry in payload["metrics"].items():
        met = {None: "", True: "yes", False: "[red]no[/red]"}[entry.get("met")]
        numbers = (
            f"{entry[key]:.3f}" if abs(entry[key]) < 100 else f"{entry[key]:,.0f}"
            for key in ("median", "min", "max")
        )
        table.add_row(name, *numbers, entry.get("target", ""), met)
    Console(width=110).print(table)
