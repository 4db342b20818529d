"""The two pictures of the monitor, as matplotlib figures rendered to PNG bytes.

`matplotlib.figure.Figure` is used directly rather than pyplot: no global figure state to leak
between runs or threads, and PNG output goes through the Agg renderer whatever backend the user's
environment selects (a training job may have no display).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def variance_vs_depth(
    names: Sequence[str],
    measured: np.ndarray,
    predicted: np.ndarray,
    theory: np.ndarray,
    grad: np.ndarray,
    step: int,
) -> bytes:
    """He's figure: forward variance against depth (measured, one-layer prediction, chained theory)
    and the backward variance next to it."""
    depth = np.arange(1, len(names) + 1)
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    forward, backward = figure.subplots(1, 2)
    forward.plot(depth, _positive(measured), "o-", label="measured")
    forward.plot(depth, _positive(predicted), "x--", label="predicted: n Var[w] E[x²] + Var[b]")
    forward.plot(depth, _positive(theory), ":", linewidth=2, label="theory: chained from the input")
    forward.set(title=f"activation variance, step {step}", ylabel="Var[y_l]")
    backward.plot(depth, _positive(grad), "o-", color="tab:red", label="measured")
    backward.set(title=f"gradient variance, step {step}", ylabel="Var[∂L/∂y_l]")
    for axes in (forward, backward):
        axes.set(yscale="log", xlabel="layer (depth)")
        axes.set_xticks(depth, names, rotation=90, fontsize=_fontsize(len(names)))
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(fontsize=8)
    return _png(figure)


def variance_heatmap(names: Sequence[str], steps: Sequence[int], variances: np.ndarray) -> bytes:
    """log10 of the activation variance, layers (rows, input at the top) x logged steps (columns)."""
    figure = Figure(
        figsize=(max(5.0, 0.25 * len(steps) + 3), max(3.0, 0.22 * len(names) + 1.5)), layout="constrained"
    )
    axes = figure.subplots()
    with np.errstate(divide="ignore", invalid="ignore"):
        image = axes.imshow(
            np.log10(_positive(np.asarray(variances).T)),
            aspect="auto",
            cmap="viridis",
            interpolation="nearest",
        )
    axes.set_yticks(range(len(names)), names, fontsize=_fontsize(len(names)))
    ticks = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 10)).round().astype(int))
    axes.set_xticks(ticks, [str(steps[i]) for i in ticks])
    axes.set(xlabel="step", ylabel="layer", title="log10 activation variance")
    figure.colorbar(image, ax=axes, label="log10 Var[y_l]")
    return _png(figure)


def _positive(values: np.ndarray) -> np.ndarray:
    """Log axes cannot show zeros, negatives or NaN: blank them rather than fail."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def _fontsize(count: int) -> float:
    return 8 if count <= 20 else 6


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
