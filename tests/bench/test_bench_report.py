"""bench.json's arithmetic, on hand-made records: ratios are taken within each repetition, then the
median; targets are judged on the median; MFU only where it is known."""

import pytest

from template.bench import report


def records(key, *values):
    return [{key: value} for value in values]


def test_ratios_pair_each_repetition_then_take_the_median():
    measurements = {
        "plain": records("images_per_s", 100.0, 200.0, 50.0),
        "template": records("images_per_s", 99.0, 190.0, 50.0),
    }
    parity = report.metrics(measurements)["parity_ratio"]
    assert parity["repeats"] == pytest.approx([0.99, 0.95, 1.0])
    assert (parity["median"], parity["min"], parity["max"]) == pytest.approx((0.99, 0.95, 1.0))
    assert parity["target"] == ">= 0.98" and parity["met"] is True


def test_targets_below_and_above():
    measurements = {"startup": records("seconds", 12.0, 9.0, 11.0)}
    startup = report.metrics(measurements)["startup_s"]
    assert startup["median"] == 11.0 and startup["target"] == "<= 10" and startup["met"] is False


def test_mfu_only_when_the_peak_is_known():
    known = {"resnet18_bf16_template": [{"images_per_s": 1e4, "mfu": 0.4}]}
    unknown = {"resnet18_bf16_template": [{"images_per_s": 1e4, "mfu": None}]}
    assert report.metrics(known)["gpu_mfu"]["median"] == 0.4
    assert "gpu_mfu" not in report.metrics(unknown)
    assert "gpu_images_per_s" in report.metrics(unknown)
