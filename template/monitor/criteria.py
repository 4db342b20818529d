"""The rules that name a layer: where, at initialisation, the signal fails (`first_failure`, against the
theory line and its finite-width band from `template.theory.band`), and which layer has moved since
(`drift`). Pure functions on floats and arrays, so the tests can check them on hand-made numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


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
