"""The comparison's figures, from the runs' summaries, as PNG bytes.

`error_vs_epoch` is He et al. 2015's Figures 2 and 3: top-1 validation error against epoch, one curve per
init (the mean over seeds), the seeds' range shaded — the picture of one init learning and the other not.
`variance_vs_depth` is the reason why, at initialisation: each layer's activation variance, measured and
as the chained theory predicts it, and the backward gradient variance, one colour per init on a log axis.

`depth` is a depth sweep's: the final validation error against depth, one line per init, next to what
explains it at initialisation — the correlation between two inputs' features at the last hidden layer,
measured and as the mean-field c-map predicts it. Where it reaches 1, every input looks alike to the
classifier, whatever the variance did.

Like template/monitor/plots.py, the figures are `matplotlib.figure.Figure`s rendered by Agg, never
pyplot: no global state between runs, and no display needed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from template.monitor.plots import png


def error_vs_epoch(summaries: Mapping[str, Sequence[dict]], title: str) -> bytes:
    """`summaries`: per init, the summary.json of each of its runs (seeds) that wrote one."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    for color, (init, runs) in _colored(summaries):
        epochs, errors = _errors_by_epoch(runs)
        if not epochs.size:
            continue
        seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an epoch no run reached gives NaN, a gap
            mean, low, high = (reduce(errors, axis=0) for reduce in (np.nanmean, np.nanmin, np.nanmax))
        axes.plot(epochs, mean, ".-", color=color, linewidth=2, label=f"{init} ({seeds})")
        if len(runs) > 1:
            axes.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0)
    axes.set(title=title, xlabel="epoch", ylabel="validation error (%)", ylim=(0, 100))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:  # none until a run has finished an epoch
        axes.legend()
    return png(figure)


def _errors_by_epoch(runs: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Epochs (1 = after the first) and a seeds x epochs array of error %, NaN where a run stopped early."""
    last = max((row["epoch"] for run in runs for row in run.get("epochs", [])), default=-1)
    errors = np.full((len(runs), last + 1), np.nan)
    for i, run in enumerate(runs):
        for row in run.get("epochs", []):
            if row.get("val/acc") is not None:
                errors[i, row["epoch"]] = 100 * (1 - row["val/acc"])
    return np.arange(1, last + 2), errors


def variance_vs_depth(summaries: Mapping[str, Sequence[dict]], title: str) -> bytes:
    """Per init the geometric mean over seeds (variances span decades; seeds differ little at init).
    The chained theory is drawn where the summaries record it (`act_var_theory` per layer)."""
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    forward, backward = figure.subplots(1, 2)
    names: list[str] = []
    for color, (init, runs) in _colored(summaries):
        layers = [run["at_init"]["layers"] for run in runs if run.get("at_init")]
        if not layers:
            continue
        names = [layer["name"] for layer in layers[0]]
        depth = np.arange(1, len(names) + 1)
        forward.plot(depth, _geometric_mean(layers, "act_var"), "o-", color=color, label=f"{init}: measured")
        theory = _geometric_mean(layers, "act_var_theory")
        if np.isfinite(theory).any():
            forward.plot(depth, theory, "--", color=color, linewidth=2, label=f"{init}: theory (chained)")
        backward.plot(depth, _geometric_mean(layers, "grad_var"), "o-", color=color, label=init)
    forward.set(title=f"{title}: activation variance at init", ylabel="Var[y_l]")
    backward.set(title="gradient variance at init", ylabel="Var[∂L/∂y_l]")
    for axes in (forward, backward):
        axes.set(yscale="log", xlabel="layer (depth)")
        if names:
            fontsize = 8 if len(names) <= 20 else 6
            axes.set_xticks(np.arange(1, len(names) + 1), names, rotation=90, fontsize=fontsize)
            axes.legend(fontsize=8)
        axes.grid(True, which="major", alpha=0.3)
    return png(figure)


def _geometric_mean(layers: Sequence[Sequence[dict]], key: str) -> np.ndarray:
    """Per layer over seeds; a missing, zero or non-finite value (null in JSON) is left out, and a layer
    with none is NaN, a gap on the log axis."""
    values = np.array([[layer.get(key) or np.nan for layer in run] for run in layers], dtype=float)
    values[~(values > 0)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN layer gives NaN, as wanted
        return np.exp(np.nanmean(np.log(values), axis=0))


def _colored(summaries: Mapping[str, Sequence[dict]]):
    """Each init with its colour from matplotlib's default cycle (C0, C1, ...): the same in both figures."""
    return ((f"C{i % 10}", item) for i, item in enumerate(summaries.items()))


def depth(summaries: Mapping[str, Mapping[int, Sequence[dict]]], title: str) -> bytes:
    """`summaries`: per init, per depth, the summary.json of each run (seed) that wrote one. Lines are
    means over seeds, bars their range; the right panel's dashed lines are the theory."""
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    error_axes, corr_axes = figure.subplots(1, 2)
    for color, (init, by_depth) in _colored(summaries):
        depths = np.array(sorted(by_depth), dtype=float)
        errors = [[100 * (1 - run["final"]["val/acc"]) for run in by_depth[d]] for d in sorted(by_depth)]
        _mean_and_range(error_axes, depths, errors, color, init)
        last = [[_last_hidden(run) for run in by_depth[d]] for d in sorted(by_depth)]
        measured = [[c for c, _ in runs] for runs in last]
        _mean_and_range(corr_axes, depths, measured, color, f"{init}: measured")
        theory = [np.nanmean([t for _, t in runs]) if runs else np.nan for runs in last]
        if np.isfinite(theory).any():
            corr_axes.plot(depths, theory, "--", color=color, linewidth=1.5, label=f"{init}: theory")
    error_axes.set(title=f"{title}: final validation error", ylabel="validation error (%)", ylim=(0, 100))
    corr_axes.set(title="correlation between inputs at the last hidden layer, at init", ylabel="mean cos")
    for axes in (error_axes, corr_axes):
        axes.set(xlabel="depth (weight layers)")
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    return png(figure)


def _last_hidden(run: dict) -> tuple[float, float]:
    """(measured, theory) correlation of the layer before the classifier, at step 0; NaN where absent."""
    layers = run.get("at_init", {}).get("layers", [])
    layer = layers[-2] if len(layers) > 1 else {}
    return tuple(np.nan if layer.get(k) is None else layer[k] for k in ("corr", "corr_theory"))


def _mean_and_range(axes, x: np.ndarray, values: Sequence[Sequence[float]], color: str, label: str) -> None:
    """Mean over each x's values (seeds) as a line, their min-max as error bars; an x with none is a gap."""
    stats = np.array([(np.mean(v), np.min(v), np.max(v)) if len(v) else (np.nan,) * 3 for v in values])
    if not np.isfinite(stats[:, 0]).any():
        return
    mean, low, high = stats.T
    axes.errorbar(x, mean, yerr=[mean - low, high - mean], fmt="o-", color=color, capsize=3, label=label)
