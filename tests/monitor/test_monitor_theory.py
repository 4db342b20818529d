"""He's one-layer relation, the finite-width band, and the rules that name a layer, on closed forms."""

import math

import numpy as np
import pytest
from scipy import stats

from template.monitor.theory import band, drift, first_failure, predicted


def test_predicted_is_hes_one_layer_relation():
    assert predicted(fan_in=288, weight_var=2 / 288, input_second_moment=0.75) == pytest.approx(1.5)
    # PyTorch's default: Var[w] = 1/(3 n), bias U(+-1/sqrt(n)) so Var[b] = 1/(3 n)
    assert predicted(100, 1 / 300, 3.0, bias_var=1 / 300) == pytest.approx(1 + 1 / 300)


def test_band_holds_the_lognormal_quantiles_with_mean_on_the_theory_line():
    theory, log_var, level = np.array([2.0, 0.5]), np.array([0.3, 1.2]), 0.9
    low, high = band(theory, log_var, level)
    for t, s2, lo, hi in zip(theory, log_var, low, high, strict=True):
        draws = stats.lognorm(s=math.sqrt(s2), scale=t * math.exp(-s2 / 2))
        assert draws.mean() == pytest.approx(t)
        assert (draws.cdf(lo), draws.cdf(hi)) == pytest.approx((0.05, 0.95))
    assert band(np.array([1.0]), np.array([0.0]), 0.99) == (pytest.approx([1.0]), pytest.approx([1.0]))


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
