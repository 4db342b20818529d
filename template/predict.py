"""`python -m template theory [key=value ...]`: what mean-field theory predicts for a config, before any
training — per layer the activation variance (with the finite-width band), the gradient variance
relative to the output's, the correlation between samples and χ, and for the model's activation the
depth scale ξ_c at the net's (σ²_w, σ²_b) and the critical line.

It builds the model and its init exactly as `make train` does (same seed, same weights) and reads the
input statistics off the first batch of the training loader — augmented as training sees it: CIFAR's
zero-padded crops raise the normalised images' second moment — so the numbers are those the monitor
draws as theory at step 0 (up to which images that batch holds).
"""

from __future__ import annotations

import math

import numpy as np
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from template import data, inits, train
from template.inits.critical import activation_of, nominal
from template.monitor.callback import monitored_layers
from template.theory import fixed_points, meanfield
from template.theory.band import theory_lines
from template.theory.propagation import Propagation, parameter_variances

BIAS_VARS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.5)  # where the critical line is tabulated


def predict(cfg: DictConfig) -> dict:
    """Per-layer theory and the activation's phase, as plain numbers (what `main` prints)."""
    import lightning as L

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = data.build(cfg.data, cfg.seed)
    model = train.build_model(cfg, datamodule.num_classes)
    datamodule.prepare_data()
    fitted = datamodule.sample_inputs(train.LSUV_BATCH) if inits.needs_batch(cfg.init.name) else None
    inits.initialize(model, cfg.init.name, batch=fitted, **cfg.init.options)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))[0].cpu()
    monitored = [name for name, _ in monitored_layers(model, cfg.stats.modules)]
    variances = {name: parameter_variances(model.get_submodule(name)) for name in monitored}
    flat = batch.flatten(1).double()
    units = flat / flat.norm(dim=1, keepdim=True)
    samples = flat.shape[0]
    input_corr = float((units.sum(0).norm() ** 2 - samples) / (samples * (samples - 1)))
    input_moment = float((flat**2).mean())
    propagation = Propagation(model, monitored)
    batch_size = cfg.data.batch_size
    result = propagation.run(
        tuple(batch.shape[1:]), input_moment, input_corr * input_moment, variances, 1.0, batch_size
    )
    lines = theory_lines(result, cfg.stats.band_level)
    layers = [
        {
            "name": name,
            "weight_var": variances[name][0] * model.get_submodule(name).weight[0].numel(),
            "bias_var": variances[name][1],
            "act_var": result.act_var[i],
            "band": (float(lines["act_var_band_low"][i]), float(lines["act_var_band_high"][i])),
            "grad_var": result.grad_var[i],
            "chi": float(lines["chi"][i]),
            "corr": result.corr[i],
        }
        for i, name in enumerate(monitored)
    ]
    phi = activation_of(model)
    drawn = (
        float(np.median([layer["weight_var"] for layer in layers])),
        float(np.median([layer["bias_var"] for layer in layers])),
    )
    stated = nominal(model, cfg.init.name, cfg.init.options)
    weight_var, bias_var = stated or drawn
    q_star = fixed_points.fixed_point(phi, weight_var, bias_var)
    return {
        "layers": layers,
        "notes": result.notes,
        "activation": type(phi).__name__,
        "weight_var": weight_var,
        "bias_var": bias_var,
        "stated_by_init": stated is not None,
        "drawn": drawn,
        "q_star": q_star,
        "chi1": float(meanfield.chi(phi, q_star, weight_var)) if math.isfinite(q_star) else math.inf,
        "depth_scale": fixed_points.depth_scale(phi, weight_var, bias_var),
        "critical_line": [(b, fixed_points.structure(phi, b)) for b in BIAS_VARS],
        "stable_from": fixed_points.stable_from(phi),
        "input": {"second_moment": input_moment, "corr": input_corr},
    }


def main(cfg: DictConfig) -> int:
    prediction = predict(cfg)
    console = Console(width=140)
    title = (
        f"Mean-field theory at initialisation: {cfg.model.name}{cfg.model.depth} {cfg.model.activation}, "
        f"init={cfg.init.name}, input E[x²]={prediction['input']['second_moment']:.3g}, "
        f"corr={prediction['input']['corr']:.3g}"
    )
    table = Table(title=escape(title))
    for column in ("layer", "σ²_w = n·Var[w]", "σ²_b", "Var[y] theory", f"band ({cfg.stats.band_level:g})",
                   "Var[∂L/∂y] / output's", "χ", "corr"):  # fmt: skip
        table.add_column(escape(column), justify="right")
    for layer in prediction["layers"]:
        low, high = layer["band"]
        table.add_row(
            layer["name"],
            f"{layer['weight_var']:.4g}",
            f"{layer['bias_var']:.3g}",
            f"{layer['act_var']:.4g}",
            f"{low:.3g} – {high:.3g}",
            f"{layer['grad_var']:.4g}",
            f"{layer['chi']:.4g}",
            f"{layer['corr']:.4f}",
        )
    console.print(table)
    for note in prediction["notes"]:
        console.print(escape(f"note: {note}"))
    chi1 = prediction["chi1"]
    phase = "critical" if abs(chi1 - 1) < 1e-3 else "ordered" if chi1 < 1 else "chaotic"
    at = f"({prediction['weight_var']:.4g}, {prediction['bias_var']:.3g})"
    drawn = "({:.4g}, {:.3g})".format(*prediction["drawn"])
    source = (
        f"as init={cfg.init.name} sets it (the drawn weights' median: {drawn})"
        if prediction["stated_by_init"]
        else f"the drawn weights' median (init={cfg.init.name} states no σ²_w)"
    )
    console.print(
        f"{prediction['activation']} at (σ²_w, σ²_b) = {at}, {source}: q* = {prediction['q_star']:.4g}, "
        f"χ₁ = {chi1:.4g} ({phase}), depth scale ξ_c = {prediction['depth_scale']:.4g} layers"
    )
    console.print(
        f"critical line (stable fixed points with χ₁ = 1) of {prediction['activation']}: "
        + ", ".join(_critical_entry(found) for _, found in prediction["critical_line"])
    )
    stable_from = prediction["stable_from"]
    if stable_from is None:
        console.print("no σ²_b in [0, 4] has a stable critical point")
    elif stable_from > 0:
        console.print(f"stable critical points exist from σ²_b ≈ {stable_from:.3g} on")
    console.print("init.name=critical puts a net on it (init.options.bias_var, init.options.distribution)")
    return 0


def _critical_entry(found: fixed_points.Structure) -> str:
    """'σ²_b=…: σ²_w=…', or why there is none: the unstable χ₁ = 1 point and the saddle-node."""
    stable = found.stable_critical
    if stable is not None:
        return f"σ²_b={found.bias_var:g}: σ²_w={stable.weight_var:.4g}"
    unstable = [f"χ₁ = 1 unstable at σ²_w={p.weight_var:.4g}" for p in found.critical if not p.stable]
    saddles = [f"saddle-node at σ²_w={s.weight_var:.4g} (χ₁={s.chi1:.3f})" for s in found.saddle_nodes[:1]]
    return f"σ²_b={found.bias_var:g}: none" + (
        f" ({'; '.join(unstable + saddles)})" if unstable or saddles else ""
    )
