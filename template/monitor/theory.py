"""What the monitor compares measurement with, and the rules that name a layer.

- `predicted` is He et al. 2015's one-layer relation Var[y_l] = n_l Var[w_l] E[x_l²] + Var[b_l], fed
  with the *measured* second moment of the layer's input. It fails only where a layer's own
  assumptions fail (weights independent of inputs, inputs independent of each other).
- The chained theory (`propagation`) is the mean-field map from the model's input for the model's own
  activations, padding and pooling: what an infinitely wide net with these weight variances does.
- `band` is how far one draw of the weights at this width may stray from it: log(measured/theory) is
  about Normal(μ, s²), s² each layer's own κ/n (meanfield's docstring) carried through the layers
  above it by the maps' own stretching (`propagation.Signal.stretched`), μ its centre. Where nothing
  stretches (ReLU without biases) μ = −s²/2: the band is centred on the typical draw, below the mean by
  e^(−s²/2) — at width 8 over 20 ReLU layers a typical draw sits far below the mean-field line and still
  trains (Hanin & Rolnick 2018). GELU and SiLU stretch a deviation of their first layers by up to 1.18
  per layer, tanh shrinks it.

Pure functions on floats and arrays, so the tests can check them against closed forms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np


def predicted(fan_in, weight_var, input_second_moment, bias_var=0.0):
    return fan_in * weight_var * input_second_moment + bias_var


def band(theory, log_var, level: float, shift=None) -> tuple[np.ndarray, np.ndarray]:
    """[low, high] holding a share `level` of single draws around the theory line: log(measured/theory)
    Normal(shift, log_var). `shift` defaults to −log_var/2 (lognormal with mean theory), which is what
    `propagation` gives wherever the maps do not stretch a deviation (ReLU without biases)."""
    theory, log_var = np.asarray(theory, dtype=float), np.asarray(log_var, dtype=float)
    shift = -log_var / 2 if shift is None else np.asarray(shift, dtype=float)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    spread = np.sqrt(np.maximum(log_var, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.log(np.where(theory > 0, theory, np.nan)) + shift
        return np.exp(centre - z * spread), np.exp(centre + z * spread)


def first_failure(
    names: Sequence[str],
    measured: Sequence[float],
    theory: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    vanish_factor: float,
    explode_factor: float,
) -> dict | None:
    """The first layer where the signal fails at initialisation, and why.

    `reason` "theory": the mean-field line itself has left [vanish, explode] × its first layer's value —
    the init cannot keep the signal at any width (Glorot on a deep ReLU net). "band": the measurement has
    left the finite-width band around that line — this draw, or something the theory does not model,
    departs from it beyond what the width explains. "ratio": where there is no theory (a node the
    propagation does not model), the measurement against the first layer's, as He et al. read it.
    `factor` is always the measured variance over the first layer's; `vs_theory` measured over theory.
    """
    measured, theory = np.asarray(measured, dtype=float), np.asarray(theory, dtype=float)
    reference = measured[0] if measured.size else math.nan
    if not reference > 0:
        return None
    theory_reference = next((t for t in theory if t > 0), math.nan)
    for i, name in enumerate(names):
        if math.isnan(measured[i]):
            continue
        factor = measured[i] / reference
        verdict = None
        if theory[i] > 0 and theory_reference > 0:
            relative = theory[i] / theory_reference
            if relative < vanish_factor or relative > explode_factor:
                verdict = ("vanishing" if relative < vanish_factor else "exploding", "theory")
            elif measured[i] < low[i] or measured[i] > high[i]:
                verdict = ("vanishing" if measured[i] < low[i] else "exploding", "band")
        elif factor < vanish_factor or factor > explode_factor:
            verdict = ("vanishing" if factor < vanish_factor else "exploding", "ratio")
        if verdict is not None:
            vs_theory = measured[i] / theory[i] if theory[i] > 0 else math.nan
            return {
                "layer": name,
                "direction": verdict[0],
                "factor": float(factor),
                "reason": verdict[1],
                "vs_theory": None if math.isnan(vs_theory) else float(vs_theory),
            }
    return None


def drift(
    names: Sequence[str], measured: Sequence[float], at_init: Sequence[float], factor: float
) -> tuple[str, float] | None:
    """The first layer whose activation variance has moved more than `factor`× from its step-0 value."""
    for name, now, start in zip(names, measured, at_init, strict=True):
        if start > 0 and now > 0 and not (1 / factor <= now / start <= factor):
            return name, now / start
    return None
