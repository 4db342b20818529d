"""LSUV, layer-sequential unit-variance init (Mishkin & Matas 2016, "All you need is a good init").

Analytic schemes predict activation variance from assumptions (independence, a known nonlinearity, no
pooling); LSUV measures it instead. Starting from orthogonal weights and zero biases, it visits the
layers in the order the forward pass reaches them and divides each weight by the standard deviation of
that layer's output on a real batch, until the output variance is within `tol` of 1 or `max_iters`
rescales have been spent. Earlier layers are final before later ones are fitted, so one pass suffices.

No library ships it, so it is written here. The model runs in eval mode while fitting — dropout off,
BatchNorm on its running statistics, which it does not update — and each measurement stops the forward
pass at the layer being fitted, so fitting layer l costs l layers, not the whole net.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from template.errors import UsageError
from template.inits.fans import Layer, layers
from template.inits.registry import Count, Positive, register
from template.inits.torch_schemes import orthogonal


class _Reached(Exception):
    """Raised by a forward hook to end the forward pass once the layer being fitted has run."""


@register(
    "lsuv",
    convention="Mishkin & Matas 2016; fitted on a batch from the DataModule (or batch= in the API)",
    formula="orthogonal, biases 0, then per layer in forward order W ← W/√Var[y] until "
    "|Var[y] − 1| < tol or max_iters rescales",
)
def lsuv(
    model: nn.Module, *, batch: torch.Tensor, tol: Positive = 0.1, max_iters: Count = 10
) -> dict[str, str]:
    all_layers = list(layers(model))
    set_by = {}
    for layer in all_layers:
        orthogonal(layer)
        set_by[layer.param("weight")] = "orthogonal (lsuv: not reached by the batch)"
        set_by.update(layer.zero_bias())
    first = next(model.parameters(), None)
    if first is not None:
        batch = batch.to(first.device)
    training = {module: module.training for module in model.modules()}
    model.eval()
    try:
        for layer in _forward_order(model, all_layers, batch):
            factor = _fit(model, layer, batch, tol, max_iters)
            set_by[layer.param("weight")] = f"lsuv (orthogonal ×{factor:.3g})"
    finally:
        for module, mode in training.items():
            module.train(mode)
    return set_by


def _fit(model: nn.Module, layer: Layer, batch: torch.Tensor, tol: float, max_iters: int) -> float:
    """Rescale one layer's weight to unit output variance; returns the total factor applied."""
    factor = 1.0
    variance = _output_variance(model, layer, batch)
    for _ in range(max_iters):
        if abs(variance - 1) < tol:
            return factor
        if not (variance > 0 and math.isfinite(variance)):
            raise UsageError(
                f"lsuv cannot rescale layer {layer.name!r}: its output variance on the batch is {variance}"
            )
        layer.weight.div_(math.sqrt(variance))
        factor /= math.sqrt(variance)
        variance = _output_variance(model, layer, batch)
    if abs(variance - 1) >= tol:
        warnings.warn(
            f"lsuv: layer {layer.name!r} has output variance {variance:.6g} after {max_iters} rescales, "
            f"off 1 by {abs(variance - 1):.2g} >= tol={tol}; a larger init.options.max_iters may help",
            stacklevel=4,
        )
    return factor


def _forward_order(model: nn.Module, candidates: list[Layer], batch: torch.Tensor) -> list[Layer]:
    """The layers in the order the forward pass first calls them; layers it never calls are left out."""
    order: list[Layer] = []

    def record(layer: Layer):
        def hook(*_):
            if layer not in order:
                order.append(layer)

        return hook

    handles = [layer.module.register_forward_hook(record(layer)) for layer in candidates]
    try:
        model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return order


def _output_variance(model: nn.Module, layer: Layer, batch: torch.Tensor) -> float:
    variances = []

    def measure(_module, _inputs, output):
        variances.append(output.detach().double().var().item())
        raise _Reached

    handle = layer.module.register_forward_hook(measure)
    try:
        model(batch)
    except _Reached:
        pass
    finally:
        handle.remove()
    return variances[0]
