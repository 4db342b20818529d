"""Where a non-finite step went wrong: the step's batch run again, hooks on, from the state it started with.

The per-step check (`nonfinite.py`) reads only what a step computes anyway — its loss, and the gradients'
norm where the run clips by norm — so it learns *that* a step went non-finite, not where. To name where,
`replay` runs `training_step` again on that step's batch, from the weights (parameters and buffers) and
random-number state the step started with, under the precision plugin's context (a bf16 autocast
overflows as it did in the step), eagerly (torch.compile's graphs set aside), with a forward hook on every
monitored layer and a gradient hook on each of their outputs. What it finds, in the order the step ran:
  activation   the first monitored layer (in `named_modules` order) whose output is not finite
  loss         every monitored output finite, the loss not
  gradient     a finite loss, and the layer nearest the output whose output or weight gradient is not
               finite: a non-finite gradient spreads downwards from where it starts
or nothing, where the replay stays finite (a step that does not repeat itself). The replay leaves no trace:
parameters, buffers (batch norm's running statistics), gradients and the random-number state are as they
were. It calls the LightningModule's `training_step` directly, past any DDP wrapper, so nothing is reduced
across ranks: each rank replays its own batch.

Where the step's starting weights come from: on a CPU the check reads the loss as the step computes it,
before the optimizer has touched the weights, so they are the model's own. On an accelerator reading the
loss would make the host wait for the device, so the check is a record on the device, read at the next
logging step, when the weights have moved on. There `Kept` copies the parameters, buffers and batch at the
start of every step — on the device, unless a step has already failed — and so holds the first failing
step's start when the record is read. That costs one pass over the weights and the batch per step, and
their size in device memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from lightning.pytorch.utilities.signature_utils import is_param_in_hook_signature
from torch import Tensor, nn
from torch.utils._pytree import TreeSpec, tree_flatten, tree_unflatten


@dataclass
class Start:
    """What a step started with, on the host: its step, batch index, random-number state and batch —
    the batch as the step got it, or, once `Kept` holds its tensors (`hand_over`), its structure and
    its other leaves. Taken at every step, so it flattens nothing until it must: a pytree flatten is
    about 40 microseconds of Python a step."""

    step: int
    batch_idx: int
    rng: list[Tensor]  # the CPU generator's state, then the CUDA device's where the step runs on one
    given: Any  # the batch; None after `hand_over`
    spec: TreeSpec | None = None  # the batch's structure, after `hand_over`
    leaves: list | None = None  # its leaves, None in place of each tensor that `Kept` holds instead

    def hand_over(self) -> list[Tensor]:
        """The batch's tensors, for `Kept` to hold; this keeps the rest."""
        leaves, self.spec = tree_flatten(self.given)
        self.given, self.leaves = None, [None if isinstance(leaf, Tensor) else leaf for leaf in leaves]
        return [leaf for leaf in leaves if isinstance(leaf, Tensor)]

    def batch(self, tensors: list[Tensor]):
        """The batch, with `tensors` (the ones `Kept` holds) in the places `hand_over` left empty."""
        if self.spec is None:
            return self.given
        supply = iter(tensors)
        return tree_unflatten([next(supply) if leaf is None else leaf for leaf in self.leaves], self.spec)


def start(step: int, batch_idx: int, batch, device: torch.device) -> Start:
    rng = [torch.get_rng_state()]
    if device.type == "cuda":
        rng.append(torch.cuda.get_rng_state(device))  # the generator's seed and offset: no device sync
    return Start(step, batch_idx, rng, batch)


class Kept:
    """The tensors a step starts from, copied on the device at every step's start unless a step has failed.

    The parameters and buffers are copied as one flat buffer per dtype (one `cat` and one `where` each):
    a `where` per tensor would be a kernel launch per tensor, on every step. Each tensor is flattened in
    its memory order, so a channels_last weight is read as it lies, without a copy."""

    def __init__(self, tensors: list[Tensor]):
        self.tensors = tensors
        self._views = [t.detach().permute(_memory_order(t)) for t in tensors]
        groups: dict[tuple, list[int]] = {}
        for i, t in enumerate(tensors):
            groups.setdefault((t.dtype, t.device), []).append(i)
        self._groups = [
            (indices, torch.empty(sum(tensors[i].numel() for i in indices), dtype=dtype, device=device))
            for (dtype, device), indices in groups.items()
        ]
        self._batch: list[Tensor] | None = None

    def keep(self, failed: Tensor, batch: list[Tensor], fresh: bool) -> None:
        """Copy the weights and `batch` (the batch's tensors) where `failed` (a device flag) is false.

        A batch shaped unlike the kept one (an epoch's short last batch) cannot be merged on the device:
        it replaces the kept one if no step can have failed since the flag was last read (`fresh`), or
        else if the flag, read here, says none did — one wait for the device where the shape changes."""
        with torch.no_grad():
            for indices, kept in self._groups:
                torch.where(failed, kept, torch.cat([self._views[i].reshape(-1) for i in indices]), out=kept)
            shapes = [(t.shape, t.dtype, t.device) for t in batch]
            if self._batch is not None and shapes == [(t.shape, t.dtype, t.device) for t in self._batch]:
                for kept, tensor in zip(self._batch, batch, strict=True):
                    torch.where(failed, kept, tensor, out=kept)
            elif fresh or not bool(failed):
                self._batch = [tensor.detach().clone() for tensor in batch]

    def load(self) -> list[Tensor]:
        """Copy the kept weights into the model; returns the kept batch's tensors."""
        with torch.no_grad():
            for indices, kept in self._groups:
                offset = 0
                for i in indices:
                    view = self._views[i]
                    view.copy_(kept[offset : offset + view.numel()].view(view.shape))
                    offset += view.numel()
        return self._batch or []


def replay(
    trainer, pl_module, layers: list[nn.Module], step: Start, kept: Kept | None
) -> tuple[str, int | None] | None:
    """(what, layer index) — ("activation", i), ("loss", None), ("gradient", i) — or None (module
    docstring). `kept`: the step's weights and batch where the model has moved on since (not on a CPU)."""
    tensors = [*pl_module.parameters(), *pl_module.buffers()]
    forward_bad: set[int] = set()
    backward_bad: set[int] = set()

    def on_gradient(index: int, grad: Tensor) -> None:
        if not _finite(grad):
            backward_bad.add(index)

    def on_output(index: int, module, inputs, output) -> None:
        if not isinstance(output, Tensor):
            return
        if not _finite(output.detach()):
            forward_bad.add(index)
        if output.requires_grad:
            output.register_hook(partial(on_gradient, index))

    handles = [m.register_forward_hook(partial(on_output, i)) for i, m in enumerate(layers)]
    try:
        with _untouched(tensors), _random_numbers(step.rng, pl_module.device), torch.enable_grad():
            batch = step.batch(kept.load() if kept is not None else [])
            with torch.compiler.set_stance("force_eager"), trainer.precision_plugin.train_step_context():
                arguments = [batch, step.batch_idx]
                if not is_param_in_hook_signature(pl_module.training_step, "batch_idx", min_args=2):
                    arguments.pop()  # Lightning passes the index only to a training_step that takes it
                loss = _loss(pl_module.training_step(*arguments))
            if forward_bad:
                return "activation", min(forward_bad)
            if loss is None or not _finite(loss.detach()):
                return "loss", None
            parameters = [p for p in pl_module.parameters() if p.requires_grad]
            grads = torch.autograd.grad(loss, parameters, allow_unused=True)  # .grad stays untouched
            by_parameter = {id(p): g for p, g in zip(parameters, grads, strict=True) if g is not None}
            for i, layer in enumerate(layers):
                if not all(_finite(by_parameter.get(id(p))) for p in layer.parameters(recurse=False)):
                    backward_bad.add(i)
            return ("gradient", max(backward_bad)) if backward_bad else None
    finally:
        for handle in handles:
            handle.remove()


def _finite(t: Tensor | None) -> bool:
    return t is None or bool(t.isfinite().all())


def _loss(outputs) -> Tensor | None:
    """The loss in what `training_step` returned: a tensor, or a mapping's "loss"."""
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    return loss if isinstance(loss, Tensor) else None


@contextmanager
def _untouched(tensors: list[Tensor]) -> Iterator[None]:
    """The tensors' values as they were, whatever the block does to them."""
    saved = [t.detach().clone() for t in tensors]
    try:
        yield
    finally:
        with torch.no_grad():
            for t, value in zip(tensors, saved, strict=True):
                t.copy_(value)


@contextmanager
def _random_numbers(states: list[Tensor], device: torch.device) -> Iterator[None]:
    """The step's random-number state for the block; the training's own stream goes on after it."""
    cuda = device.type == "cuda" and len(states) > 1
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.set_rng_state(states[0])
        if cuda:
            torch.cuda.set_rng_state(states[1], device)
        yield


def _memory_order(t: Tensor) -> list[int]:
    """t's dimensions from the largest stride down: permuted so, a dense tensor is contiguous."""
    return sorted(range(t.dim()), key=lambda d: -t.stride(d))
