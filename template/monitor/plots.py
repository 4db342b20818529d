"""The two pictures of the monitor, as matplotlib figures rendered to PNG bytes.

`matplotlib.figure.Figure` is used directly rather than pyplot: no global figure state to leak
between runs or threads, and PNG output goes through the Agg renderer whatever backend the user's
environment selects (a training job may have no display).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

THEORY_LABELS = {"mean_field": "chained backward theory", "position": "theory, position by position"}


def variance_vs_depth(
    names: Sequence[str], stats: dict[str, np.ndarray], band_level: float, step: int
) -> bytes:
    """He's figure and what lies past it: forward variance against depth (measured, the one-layer
    prediction, the mean-field line with its finite-width band), the backward variance next to its
    theory, and the correlation between samples next to its map."""
    depth = np.arange(1, len(names) + 1)
    figure = Figure(figsize=(15, 4.4), layout="constrained")
    forward, backward, correlation = figure.subplots(1, 3)
    forward.fill_between(
        depth,
        _positive(stats["act_var_band_low"]),
        _positive(stats["act_var_band_high"]),
        color="tab:green",
        alpha=0.15,
        label=f"finite-width band ({band_level:g} of draws)",
    )
    forward.plot(depth, _positive(stats["act_var"]), "o-", label="measured")
    forward.plot(
        depth, _positive(stats["act_var_predicted"]), "x--", label="predicted: n Var[w] E[x²] + Var[b]"
    )
    forward.plot(
        depth,
        _positive(stats["act_var_theory"]),
        ":",
        color="tab:green",
        linewidth=2,
        label="mean-field theory",
    )
    forward.set(title=f"activation variance, step {step}", ylabel="Var[y_l]")
    backward.plot(depth, _positive(stats["grad_var"]), "o-", color="tab:red", label="measured")
    backward.plot(
        depth, _positive(stats["grad_var_theory"]), ":", color="tab:green", linewidth=2, label="theory"
    )
    backward.set(title=f"gradient variance, step {step}", ylabel="Var[∂L/∂y_l]")
    correlation.plot(depth, stats["corr"], "o-", color="tab:purple", label="measured")
    correlation.plot(depth, stats["corr_theory"], ":", color="tab:green", linewidth=2, label="theory")
    correlation.set(
        title=f"correlation between samples, step {step}", ylabel="mean cos(y_a, y_b)", ylim=(-0.05, 1.05)
    )
    for axes in (forward, backward, correlation):
        if axes is not correlation:
            axes.set(yscale="log")
        axes.set(xlabel="layer (depth)")
        axes.set_xticks(depth, names, rotation=90, fontsize=_fontsize(len(names)))
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(fontsize=8)
    return png(figure)


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
    return png(figure)


def _positive(values: np.ndarray) -> np.ndarray:
    """Log axes cannot show zeros, negatives or NaN: blank them rather than fail."""
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def _fontsize(count: int) -> float:
    return 8 if count <= 20 else 6


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes, at the one resolution every figure of the project uses."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def jacobian_spectrum(spectrum: dict, squared: np.ndarray | None) -> bytes:
    """Left: the histogram of one sample's squared singular values (the dense Jacobian, where it is small
    enough), with the estimated mean; right: the partial Jacobians' mean squared singular value along the
    stretch, measured (± two standard errors) and from the theory (chained backward map, or position by
    position where no layer mixes positions)."""
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    histogram, partial = figure.subplots(1, 2)
    title = (
        f"{spectrum['from']} → {spectrum['to']}: mean λ {spectrum['sv2_mean']:.3g} "
        f"(theory {_g(spectrum.get('sv2_mean_theory'))}), normalised var {spectrum['sv2_nvar']:.3g} "
        f"(theory {_g(spectrum.get('sv2_nvar_theory'))})"
    )
    if squared is not None and np.isfinite(squared).all() and (squared > 0).any():
        positive = squared[squared > 0]
        histogram.hist(np.log10(positive), bins=60, color="tab:blue", alpha=0.8)
        histogram.axvline(
            np.log10(spectrum["sv2_mean"]), color="tab:red", linestyle="--", label="mean (estimated)"
        )
        histogram.set(
            xlabel="log10 λ (squared singular value)", ylabel="count", title="one sample's spectrum"
        )
        histogram.legend(fontsize=8)
    else:
        histogram.text(0.5, 0.5, "Jacobian too large for the dense spectrum\n(moments only)", ha="center")
        histogram.set_axis_off()
    rows = spectrum["partial"]
    depth = np.arange(1, len(rows) + 1)
    measured = np.array([_nan(row["sv2_mean"]) for row in rows])
    error = np.array([_nan(row["sv2_mean_ci95"]) for row in rows])
    partial.errorbar(
        depth, _positive(measured), yerr=np.nan_to_num(error), fmt="o-", markersize=3, label="measured (95 %)"
    )
    partial.plot(depth, _positive([_nan(row["sv2_mean_theory"]) for row in rows]), ":", color="tab:green",
                 linewidth=2, label=THEORY_LABELS.get(spectrum.get("theory"), "theory"))  # fmt: skip
    names = [row["layer"] for row in rows]
    ticks = np.unique(np.linspace(0, len(names) - 1, min(len(names), 12)).round().astype(int))
    partial.set_xticks(depth[ticks], [names[i] for i in ticks], rotation=90, fontsize=7)
    partial.set(yscale="log", xlabel="from layer", ylabel=f"mean λ of ∂h_{spectrum['to']}/∂h_l")
    partial.grid(True, alpha=0.3)
    partial.legend(fontsize=8)
    figure.suptitle(title, fontsize=9)
    return png(figure)


def _nan(value) -> float:
    return math.nan if value is None else float(value)


def _g(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"
