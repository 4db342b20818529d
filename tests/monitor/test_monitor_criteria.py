"""The rules that name a layer, on hand-made numbers."""

import math

import pytest

from template.monitor.criteria import drift, first_failure

NAMES = ["a", "b", "c", "d"]


def test_first_failure_names_the_layer_where_the_theory_itself_vanishes():
    theory = [1.0, 0.1, 0.009, 1e-4]
    failure = first_failure(NAMES, [1.0, 0.1, 0.009, 1e-4], theory, [0, 0, 0, 0], [9, 9, 9, 9], 1e-2, 1e2)
    assert failure == {
        "layer": "c",
        "direction": "vanishing",
        "factor": pytest.approx(0.009),
        "reason": "theory",
        "vs_theory": pytest.approx(1.0),
    }


def test_a_draw_inside_the_band_is_not_a_failure_however_far_from_the_first_layer():
    theory, low, high = [1.0] * 4, [0.5, 0.01, 1e-3, 1e-4], [2.0, 50, 500, 5000]
    assert first_failure(NAMES, [1.0, 0.02, 0.005, 2e-4], theory, low, high, 1e-2, 1e2) is None
    failure = first_failure(NAMES, [1.0, 0.02, 0.005, 5e-5], theory, low, high, 1e-2, 1e2)
    assert (failure["layer"], failure["direction"], failure["reason"]) == ("d", "vanishing", "band")
    assert failure["vs_theory"] == pytest.approx(5e-5)
    above = first_failure(NAMES, [1.0, 60.0, 1.0, 1.0], theory, low, high, 1e-2, 1e2)
    assert (above["layer"], above["direction"], above["reason"]) == ("b", "exploding", "band")


def test_without_theory_the_measurement_is_judged_against_the_first_layer():
    nan = [math.nan] * 3
    failure = first_failure(["a", "b", "c"], [2.0, 1.0, 300.0], nan, nan, nan, 1e-2, 1e2)
    assert failure == {
        "layer": "c",
        "direction": "exploding",
        "factor": 150.0,
        "reason": "ratio",
        "vs_theory": None,
    }
    assert first_failure(["a", "b"], [0.0, 1.0], nan[:2], nan[:2], nan[:2], 1e-2, 1e2) is None


def test_drift_names_the_first_layer_that_moved_past_the_factor_since_step_zero():
    assert drift(["a", "b", "c"], [1.0, 150.0, 1e4], [1.0, 1.0, 1.0], 100.0) == ("b", 150.0)
    assert drift(["a", "b"], [0.5, 2.0], [1.0, 1.0], 100.0) is None
