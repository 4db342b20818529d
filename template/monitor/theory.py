"""He et al. (2015)'s variance relations, and the rule that names the layer where a network breaks.

Two predictions, because they answer different questions:
- `predicted` is the one-layer relation Var[y_l] = n_l Var[w_l] E[x_l^2] + Var[b_l], fed with the
  *measured* second moment of the layer's input. It fails only where a layer's assumptions fail
  (weights independent of inputs, inputs independent of each other), so it tests the layer alone.
- `chained` is the same relation composed from the raw input, with E[x_l^2] = gain Var[y_{l-1}] for
  the activation in between (gain 1/2 for ReLU). It is what the paper plots; pooling, padding and
  normalisation are invisible to it, so where the measured curve leaves it, one of those is why.

Pure functions on floats, so the tests can check them against closed forms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def predicted(fan_in: int, weight_var: float, input_second_moment: float, bias_var: float = 0.0) -> float:
    return fan_in * weight_var * input_second_moment + bias_var


def chained(
    input_second_moment: float,
    fan_ins: Sequence[int],
    weight_vars: Sequence[float],
    bias_vars: Sequence[float],
    gain: float = 0.5,
) -> list[float]:
    """Var[y_l] for every layer in order: the first layer sees the raw input (no activation)."""
    variances, second_moment = [], input_second_moment
    for fan_in, weight_var, bias_var in zip(fan_ins, weight_vars, bias_vars, strict=True):
        variances.append(predicted(fan_in, weight_var, second_moment, bias_var))
        second_moment = gain * variances[-1]
    return variances


def first_failure(
    names: Sequence[str], variances: Sequence[float], vanish_factor: float, explode_factor: float
) -> dict | None:
    """The first layer whose activation variance left [vanish, explode] x the first layer's.

    `factor` is the layer's variance over the first layer's, so 1e-9 reads "a billion times smaller".
    Layers without a measurement (NaN) are skipped; a first layer without a positive variance gives
    no reference, hence no verdict.
    """
    reference = variances[0] if len(variances) else math.nan
    if not reference > 0:
        return None
    for name, variance in zip(names, variances, strict=True):
        factor = variance / reference
        if factor < vanish_factor:
            return {"layer": name, "direction": "vanishing", "factor": float(factor)}
        if factor > explode_factor:
            return {"layer": name, "direction": "exploding", "factor": float(factor)}
    return None
