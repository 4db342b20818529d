"""What a layer's measured variance is compared with (`template.monitor.criteria` names the layer where
the two part).

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


def theory_lines(result, level: float) -> dict[str, np.ndarray]:
    """Per layer, what one `Propagation.run` predicts, as the monitor logs it and `make theory` prints it:
    the activation variance with its band, the gradient variance, χ = g_l/g_(l+1) (NaN at the last layer)
    and the correlation between samples."""
    act, grad = np.array(result.act_var, dtype=float), np.array(result.grad_var, dtype=float)
    low, high = band(act, result.band, level, np.array(result.shift, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        chi = np.append(grad[:-1] / grad[1:], np.nan)
    return {
        "act_var_theory": act,
        "act_var_band_low": low,
        "act_var_band_high": high,
        "grad_var_theory": grad,
        "chi": chi,
        "corr_theory": np.array(result.corr, dtype=float),
    }
