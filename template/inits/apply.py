"""`initialize`: run one registered scheme over a model and say what it did to every parameter.

The report exists because silence is the usual failure of init code: a scheme that forgets a layer type
leaves it at the framework default and nothing says so. Every parameter is either in `set_by` (with what
set it) or in `untouched`, and the run warns about and records the latter.

Randomness comes from torch's global generator, so `torch.manual_seed(s)` (or Lightning's
`seed_everything`) before `initialize` gives the same weights for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from template.errors import UsageError
from template.inits import registry
from template.inits.fans import layers


@dataclass
class InitReport:
    scheme: str  # the canonical name, whichever alias the user typed
    set_by: dict[str, str] = field(default_factory=dict)  # parameter -> what set it
    untouched: list[str] = field(default_factory=list)  # parameters left as the framework set them

    def as_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "set_by": dict(self.set_by), "untouched": list(self.untouched)}


def initialize(model: nn.Module, name: str, *, batch: torch.Tensor | None = None, **options) -> InitReport:
    """Initialise every Conv/Linear/ConvTranspose of `model` with scheme `name` (an alias is fine).

    `batch` is a tensor of inputs, required by data-dependent schemes (`needs_batch(name)`) and ignored
    by the others, so a caller may always pass one.
    """
    scheme = registry.lookup(name)
    registry.check_options(name, options)
    if scheme.needs_batch:
        if batch is None:
            raise UsageError(
                f"init {scheme.name} is data-dependent: pass batch= (a run takes one from the data)"
            )
        options["batch"] = batch
    with torch.no_grad():
        if scheme.per_layer:
            set_by = {}
            for layer in layers(model):
                bias_set_by = scheme.fn(layer, **options)
                set_by[layer.param("weight")] = scheme.name
                if bias_set_by is None:
                    set_by.update(layer.zero_bias())
                elif layer.module.bias is not None:
                    set_by[layer.param("bias")] = bias_set_by
        else:
            set_by = scheme.fn(model, **options)
    untouched = [n for n, _ in model.named_parameters() if n not in set_by]
    return InitReport(scheme.name, set_by, untouched)
