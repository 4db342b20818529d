"""bench.json's arithmetic, on hand-made records: ratios are taken within each repetition, then the
median; targets are judged on the median; CPU-time ratios only on a CPU; MFU only where it is known."""

import pytest
import torch

from template.bench import report


def records(key, *values):
    return [{key: value} for value in values]


def test_ratios_pair_each_repetition_then_take_the_median():
    measurements = {
        "plain": records("images_per_s", 100.0, 200.0, 50.0),
        "template": records("images_per_s", 99.0, 190.0, 50.0),
    }
    parity = report.metrics(measurements, torch.device("cuda"))["parity_ratio"]
    assert parity["repeats"] == pytest.approx([0.99, 0.95, 1.0])
    assert (parity["median"], parity["min"], parity["max"]) == pytest.approx((0.99, 0.95, 1.0))
    assert parity["target"] == ">= 0.98" and parity["met"] is True


def test_targets_below_and_above():
    measurements = {"startup": records("seconds", 12.0, 9.0, 11.0)}
    startup = report.metrics(measurements, torch.device("cpu"))["startup_s"]
    assert startup["median"] == 11.0 and startup["target"] == "<= 10" and startup["met"] is False


def test_cpu_time_ratios_only_on_a_cpu():
    measurements = {
        name: [{"images_per_s": 10.0, "images_per_cpu_s": 20.0}] for name in ("plain", "template")
    }
    assert "parity_ratio_cpu_time" in report.metrics(measurements, torch.device("cpu"))
    assert "parity_ratio_cpu_time" not in report.metrics(measurements, torch.device("cuda"))


def test_mfu_only_when_the_peak_is_known():
    known = {"resnet18_bf16_template": [{"images_per_s": 1e4, "mfu": 0.4}]}
    unknown = {"resnet18_bf16_template": [{"images_per_s": 1e4, "mfu": None}]}
    assert report.metrics(known, torch.device("cuda"))["gpu_mfu"]["median"] == 0.4
    assert "gpu_mfu" not in report.metrics(unknown, torch.device("cuda"))
    assert "gpu_images_per_s" in report.metrics(unknown, torch.device("cuda"))
