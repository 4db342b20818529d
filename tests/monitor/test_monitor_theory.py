"""He's relations and the first-failure rule against closed forms."""

import math

import pytest

from template.monitor.theory import chained, first_failure, predicted


def test_predicted_is_hes_one_layer_relation():
    assert predicted(fan_in=288, weight_var=2 / 288, input_second_moment=0.75) == pytest.approx(1.5)
    # PyTorch's default: Var[w] = 1/(3 n), bias U(+-1/sqrt(n)) so Var[b] = 1/(3 n)
    assert predicted(100, 1 / 300, 3.0, bias_var=1 / 300) == pytest.approx(1 + 1 / 300)


@pytest.mark.parametrize(
    ("weight_var", "per_layer"),
    [(lambda n: 2 / n, 1.0), (lambda n: 2 / (n + n), 0.5), (lambda n: 1 / (3 * n), 1 / 6)],
    ids=["kaiming", "glorot", "pytorch_default_weights"],
)
def test_chained_on_square_relu_layers_is_a_geometric_series(weight_var, per_layer):
    n, depth, second_moment = 144, 30, 1.7
    variances = chained(second_moment, [n] * depth, [weight_var(n)] * depth, [0.0] * depth)
    first = n * weight_var(n) * second_moment  # the raw input: no activation before the first layer
    assert variances == pytest.approx([first * per_layer**layer for layer in range(depth)], rel=1e-12)


def test_chained_adds_each_bias_after_the_gain():
    variances = chained(2.0, [10, 20], [0.1, 0.05], [0.3, 0.7], gain=0.25)
    first = 10 * 0.1 * 2.0 + 0.3
    assert variances == pytest.approx([first, 20 * 0.05 * 0.25 * first + 0.7])


def test_first_failure_names_the_first_layer_out_of_bounds_with_direction_and_factor():
    names = ["a", "b", "c", "d"]
    assert first_failure(names, [1.0, 0.5, 0.009, 1e-6], 1e-2, 1e2) == {
        "layer": "c",
        "direction": "vanishing",
        "factor": pytest.approx(0.009),
    }
    assert first_failure(names, [2.0, 300.0, 1e-9, 1.0], 1e-2, 1e2) == {
        "layer": "b",
        "direction": "exploding",
        "factor": pytest.approx(150.0),
    }
    assert first_failure(names, [1.0, 0.02, 50.0, 1.0], 1e-2, 1e2) is None


def test_first_failure_skips_unmeasured_layers_and_needs_a_positive_reference():
    assert first_failure(["a", "b", "c"], [1.0, math.nan, 1e-3], 1e-2, 1e2)["layer"] == "c"
    assert first_failure(["a", "b"], [0.0, 1.0], 1e-2, 1e2) is None
    assert first_failure(["a", "b"], [math.nan, 1.0], 1e-2, 1e2) is None
