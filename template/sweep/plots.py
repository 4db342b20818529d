"""The phase diagram, and the sweep's accuracy heatmap over the 6·ξ_c line, rendered to PNG bytes."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from template.monitor.plots import png


def phase_diagram(
    record: dict, theory: dict[str, np.ndarray], lines: dict[str, np.ndarray], sweep: dict | None
) -> bytes:
    figure = Figure(figsize=(12 if sweep else 6.2, 4.8), layout="constrained")
    axes = figure.subplots(1, 2 if sweep else 1)
    plane, heat = (axes[0], axes[1]) if sweep else (axes, None)
    w, b = np.asarray(record["weight_vars"]), np.asarray(record["bias_vars"])
    xi = np.where(np.isfinite(theory["depth_scale"]), theory["depth_scale"], np.nan)
    xi = np.clip(xi, 0.5, 1e4)
    filled = plane.contourf(w, b, xi, levels=np.geomspace(0.5, 1e4, 14), norm=LogNorm(), cmap="viridis")
    contours = plane.contour(w, b, xi, levels=[3, 10, 30, 100, 300], colors="white", linewidths=0.7)
    plane.clabel(contours, fmt="ξ=%g", fontsize=7)
    figure.colorbar(filled, ax=plane, label="depth scale ξ_c (layers)")
    plane.plot(lines["critical_line"], b, color="red", linewidth=2, label="χ₁ = 1, stable (critical line)")
    plane.plot(lines["unstable_critical"], b, color="red", linewidth=1.5, linestyle="--",
               label="χ₁ = 1 on the unstable branch")  # fmt: skip
    for key, label in (("saddle_node_1", "saddle-nodes (fixed points born/die)"), ("saddle_node_2", None)):
        plane.plot(lines[key], b, color="black", linewidth=1.5, linestyle=":", label=label)
    plane.set(xlabel="σ²_w", ylabel="σ²_b", title=f"{record['activation']}: ordered (left) | chaotic (right)")
    plane.set_xlim(w[0], w[-1])
    plane.legend(fontsize=8, loc="upper left")
    if sweep:
        depths, weight_vars = sweep["depths"], sweep["weight_vars"]
        accuracy = np.full((len(depths), len(weight_vars)), np.nan)
        for i, depth in enumerate(depths):
            for j, weight_var in enumerate(weight_vars):
                point = sweep["points"].get(f"d{depth}-w{weight_var:g}", {})
                if point.get("status") == "completed" and point["result"]["val/acc"] is not None:
                    accuracy[i, j] = point["result"]["val/acc"]
        image = heat.imshow(accuracy, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1,
                            extent=(-0.5, len(weight_vars) - 0.5, -0.5, len(depths) - 0.5))  # fmt: skip
        figure.colorbar(image, ax=heat, label="final val/acc (blank: failed)")
        scale = np.array([np.nan if x is None else 6 * x for x in sweep["depth_scale"]])
        # the 6·ξ_c line on the heatmap's depth axis (rows are the depths, interpolated in log depth)
        rows = np.interp(np.log(np.clip(scale, 1e-9, None)), np.log(depths), np.arange(len(depths)),
                         left=-0.5, right=len(depths) - 0.5)  # fmt: skip
        heat.plot(np.arange(len(weight_vars)), np.where(np.isfinite(scale), rows, np.nan), "c--", linewidth=2,
                  label="6·ξ_c")  # fmt: skip
        heat.set_xticks(range(len(weight_vars)), [f"{x:g}" for x in weight_vars])
        heat.set_yticks(range(len(depths)), [str(d) for d in depths])
        heat.set(xlabel="σ²_w", ylabel="depth", title=f"trainability, σ²_b = {sweep['bias_var']:g}")
        heat.legend(fontsize=8, loc="upper right")
    return png(figure)
