"""bench.json's arithmetic, on hand-made records: ratios are taken within each repetition, then the
median; targets are judged on the median; MFU only where it is known."""

import numpy as np
import pytest

from template.bench import report


def records(key, *values):
    return [{key: value} for value in values]


def test_ratios_pair_each_repetition_then_take_the_median():
    def timed(*pairs):  # (images per wall second, images per CPU second) of each repetition
        return [{"images_per_s": wall, "images_per_cpu_s": cpu} for wall, cpu in pairs]

    measurements = {
        "plain": timed((100.0, 50.0), (200.0, 60.0), (50.0, 40.0)),
        "template": timed((99.0, 45.0), (190.0, 60.0), (50.0, 36.0)),
    }
    summary = report.metrics(measurements)
    parity = summary["parity_ratio"]
    assert parity["repeats"] == pytest.approx([0.99, 0.95, 1.0])
    assert (parity["median"], parity["min"], parity["max"]) == pytest.approx((0.99, 0.95, 1.0))
    assert parity["iqr"] == pytest.approx(0.995 - 0.97)  # quartiles of 0.95, 0.99, 1.0, interpolated
    assert parity["target"] == ">= 0.98" and parity["met"] is True
    cpu = summary["parity_cpu_ratio"]  # images per CPU second, paired the same way
    assert cpu["repeats"] == pytest.approx([0.9, 1.0, 0.9])
    assert cpu["median"] == pytest.approx(0.9) and cpu["met"] is False


def test_lightnings_share_and_the_templates_multiply_to_the_parity():
    """bare_lightning_ratio (bare Lightning ÷ its plain loop) times template_vs_bare_ratio is the parity,
    repeat by repeat: what is Lightning's and what is the template's."""
    measurements = {
        "plain": records("images_per_s", 100.0, 200.0),
        "template": records("images_per_s", 90.0, 190.0),
        "plain_bare": records("images_per_s", 110.0, 180.0),
        "bare": records("images_per_s", 108.0, 171.0),
    }
    for record in (r for side in measurements.values() for r in side):
        record["images_per_cpu_s"] = record["images_per_s"] / 2
    summary = report.metrics(measurements)
    bare, ours = summary["bare_lightning_ratio"]["repeats"], summary["template_vs_bare_ratio"]["repeats"]
    assert bare == pytest.approx([108 / 110, 171 / 180])
    assert [b * o for b, o in zip(bare, ours, strict=True)] == pytest.approx(
        summary["parity_ratio"]["repeats"]
    )
    assert summary["parity_ratio"]["repeats"] == pytest.approx([0.9, 0.95])


def test_step_costs_are_each_turns_excess_over_its_plain_turn():
    """Per-step milliseconds from the turns, by hand: Lightning's (the bare side), the template's without
    the monitor, the monitor's on an ordinary step (with less without), and its logging step over an
    ordinary one — each a median over turns, so a one-off slow turn does not move it."""

    def turns(*excess, logging_at=None, plain=0.2, steps=1):
        return {
            "turns": [
                {"steps": steps, "plain_s": plain, "template_s": plain + e, "logging_step": i == logging_at}
                for i, e in enumerate(excess)
            ]
        }

    measurements = {
        "bare": [turns(0.002, 0.003, 0.002, 0.5)],  # 0.5 s: a one-off, dropped by the median
        "template_no_monitor": [turns(0.004, 0.005, 0.004, 0.004, logging_at=1)],
        "template": [turns(0.0045, 0.0945, 0.0045, 0.0050, logging_at=1)],
    }
    summary = report.metrics(measurements)
    assert summary["lightning_step_ms"]["median"] == pytest.approx(2.5)
    assert summary["template_step_ms"]["median"] == pytest.approx(4.0)
    assert summary["monitor_step_ms"]["median"] == pytest.approx(0.5)
    assert summary["monitor_logging_step_ms"]["median"] == pytest.approx(90.0)
    # a turn of 10 steps holding the logging step: ten ordinary steps' excess come off it
    measurements["template"] = [turns(0.045, 0.135, 0.045, logging_at=1, plain=2.0, steps=10)]
    assert report.metrics(measurements)["monitor_logging_step_ms"]["median"] == pytest.approx(90.0)
    # a window without a logging step has no logging-step cost, and nothing else is lost
    measurements["template"] = [turns(0.0045, 0.0045)]
    summary = report.metrics(measurements)
    assert "monitor_logging_step_ms" not in summary and summary["monitor_step_ms"]["median"] == pytest.approx(
        0.5
    )


def test_iqr_matches_numpy_default_quartiles():
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    low, high = np.percentile(values, [25, 75])
    assert report._iqr(values) == pytest.approx(high - low)
    assert report._iqr([2.0]) == 0.0


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
