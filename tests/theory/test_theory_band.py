"""He's one-layer relation and the finite-width band, on closed forms."""

import math

import numpy as np
import pytest
from scipy import stats

from template.theory.band import band, predicted


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
