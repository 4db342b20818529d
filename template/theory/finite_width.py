"""What a finite width adds to mean field, at one activation: the average over a layer's units of a
moment taken at each unit's own q (`over_units`), and how the activation stretches a deviation of this
draw's q (`log_stretch`), which `propagation` carries into the band. For a positively homogeneous
activation (ReLU, leaky ReLU) both are known without quadrature: `homogeneous`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from template.theory import meanfield
from template.theory.position_maps import distinct


def over_units(moment: Callable, relative_var: torch.Tensor, step: float = 0.05) -> torch.Tensor:
    """The mean over a layer's units of `moment(s)`, a moment at q·s, where each unit's s (its own squared
    weight norm over the mean, its own bias) has mean 1 and variance `relative_var`: to second order,
    moment(1) + ½ v moment″(1), the curvature a central difference in s. Mean field takes every unit's q
    equal, which is exact as the fan-in grows; a first conv on one channel has 9 weights per unit, v =
    2/9 for Gaussian weights, and there Jensen's inequality moves tanh's E[φ′²] by +6 % and E[φ²] by −4 %.
    The second order is within 0.003 of the exact average over χ²₉ in the log (checked by quadrature over
    the norms' distribution); ReLU's moments are linear in q, so it changes nothing there."""
    centre = moment(1.0)
    if not bool((relative_var > 0).any()):
        return centre
    curvature = (moment(1 + step) - 2 * centre + moment(1 - step)) / step**2
    return centre + relative_var / 2 * curvature


def log_stretch(phi: Callable, m: torch.Tensor, step: float = 0.02) -> tuple[float, float]:
    """The first and second derivatives in δ of ln Σ_p E[φ²] at q_p e^δ: how the activation carries a
    deviation e^δ of this draw's input second moment, the same at every position (a channel's weights
    scale it everywhere), to the mean of its output's. The first is Σ_p E[x φ φ′] / Σ_p E[φ²] by
    quadrature (`meanfield.log_slope`), exactly 1 for ReLU; the second a central difference in δ, whose
    error (step²/12 times the fourth derivative, below 1e-5 here) is far under the band's own. For a
    positively homogeneous φ, Σ_p E[φ²] is proportional to e^δ: 1 and 0 exactly (`propagation` knows
    that without calling this)."""
    (q,), inverse = distinct(m)
    moved = meanfield.moment(phi, torch.stack([q, q * math.exp(step), q * math.exp(-step)]))  # (3, distinct)
    total, up, down = (float(values[inverse].sum()) for values in moved)
    if not (total > 0 and up > 0 and down > 0):
        return 0.0, 0.0
    slope = float(meanfield.stretch_moment(phi, q)[inverse].sum()) / total
    curvature = (math.log(up) - 2 * math.log(total) + math.log(down)) / step**2
    return slope, curvature
