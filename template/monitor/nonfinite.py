"""Non-finite values stop the run (or, with `stats.on_nonfinite=warn`, are reported once) naming the step
and where: `non-finite activation at step 3 in layer features.2`, `non-finite loss at step 2`,
`non-finite gradient at step 5 in layer classifier`.

Each step is checked only through what it computes anyway: its loss (`on_before_backward`) and, where the
run clips gradients by norm, the gradients' total norm (`on_before_optimizer_step`: Lightning keeps no
norm of its own, so this is one more pass over the gradients — the parameters, not the activations). Once
a step fails, `replay.py` runs its batch again from the state the step started with and names the layer.
Probing every layer's output on every step cost a sum over all of them, 2 ms a step on the default net
on two CPU threads (1 % of the run); these checks cost microseconds.

On a CPU (`checks_in_step`) the loss is read as the step makes it — the value is on the host already — and
a failure is settled in `on_before_optimizer_step`, before the optimizer touches the weights (after the
backward, whose autograd graph a replay run before it could break: it writes the step's weights back in
place). On an accelerator that read would make the host wait for the device on every step, so the check
is a record on the device (the first failing call, by `torch.where`: no transfer), read where the monitor
reads the device anyway: in the one copy of each logging step, and at the epoch's end.

What this gives up: a non-finite value the loss and the gradients never see — an infinity that a later
ReLU turns into 0 — is caught only at the next logging step, whose statistics are not finite (or at none,
if no logging step follows).

Under DDP every rank takes the same decision: on a CPU the ranks agree at every optimizer step through
`reduce_boolean_decision` (a one-number all-reduce); elsewhere every rank's record comes with the logging
step's gather (or one at the epoch's end), so all see the same first failing call. Every rank replays it
(so that the collectives of a forward meet), the findings of the ranks where it failed are gathered and
the lowest such rank's names the layer: a rank that fails alone stops the others, with the same message.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import Tensor

from template.monitor import replay

log = logging.getLogger(__name__)

ON_NONFINITE = ("stop", "warn")  # stats.on_nonfinite
WHAT = ("loss", "gradient", "activation")  # what a replay can name; the first two are also what a step sees


class NonFiniteError(RuntimeError):
    """A non-finite activation, loss or gradient. The message is one line, for the CLI to print as is."""


def checks_in_step(device: torch.device) -> bool:
    """Whether a step's loss is read on the host as the step makes it: where the value already is."""
    return device.type == "cpu"


class Watch:
    """The per-step check, its replay and its report, for the monitor's layers (`names`, `layers`).

    What a check records is the first failing call (micro-batch) as 2·call + what (0 loss, 1 gradient),
    infinite while none has failed: on a CPU in `_failed`, on the host, settled before the optimizer
    steps; elsewhere in `record`, on the device, settled when the monitor reads it. `warned` is the
    monitor's set of one-time messages, kept in its checkpointed state."""

    def __init__(
        self, names, layers, on_nonfinite: str, accumulator, pl_module, warned: set[str], in_step: bool
    ):
        self.names, self.layers, self.on_nonfinite, self.warned = names, layers, on_nonfinite, warned
        self._accumulator = accumulator  # disarmed while a replay runs: its statistics are the step's
        self.in_step = in_step  # `checks_in_step`
        self.record = torch.full((), math.inf, dtype=torch.float64, device=pl_module.device)
        self._failed = math.inf
        tensors = [*pl_module.parameters(), *pl_module.buffers()]
        self._kept = None if self.in_step else replay.Kept(tensors)
        self._starts: dict[int, replay.Start] = {}  # each call's start since the record was last settled
        self._calls = 0  # micro-batches so far
        self._fresh = True  # no call since the record was last settled

    def start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        """At a micro-batch's start: what a replay of it would need."""
        if "nonfinite" in self.warned:
            return
        started = replay.start(trainer.global_step, batch_idx, batch, pl_module.device)
        if self._kept is not None:
            self._kept.keep(self.record.isfinite(), started.hand_over(), self._fresh)
        self._starts[self._calls] = started
        self._calls += 1
        self._fresh = False

    def loss(self, loss: Tensor) -> None:
        """`on_before_backward`: is the micro-batch's loss finite?"""
        self._check(loss.detach(), what=0)

    def before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        """Where the run clips by norm, is the gradients' norm finite? Not under a loss scaler (16-mixed),
        whose infinite gradients are how it finds its scale: it skips those steps itself. Then, on a CPU,
        settle the step before the optimizer touches the weights: every rank says whether it failed."""
        clips = trainer.gradient_clip_val and trainer.gradient_clip_algorithm in (None, "norm")  # None: norm
        if clips and self._accumulator.loss_scaler is None:
            grads = [
                p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None
            ]
            if grads:
                self._check(_total_norm(grads), what=1)
        if not self.in_step:
            return
        failed, self._failed = self._failed, math.inf
        if trainer.strategy.reduce_boolean_decision(math.isfinite(failed), all=False):
            if trainer.world_size > 1:
                mine = torch.tensor(failed, dtype=torch.float64, device=trainer.strategy.root_device)
                self.settle(trainer, pl_module, trainer.strategy.all_gather(mine).cpu().numpy())
            else:
                self.settle(trainer, pl_module, np.array([failed]))
        self._starts = {}

    def _check(self, value: Tensor, what: int) -> None:
        if "nonfinite" in self.warned:
            return
        code = 2 * (self._calls - 1) + what
        if self.in_step:  # on a CPU the value is on the host already: one read, not three operations
            finite = math.isfinite(value.item()) if value.numel() == 1 else bool(value.isfinite().all())
            if not finite:
                self._failed = min(self._failed, code)
        else:
            self.record = torch.where(value.isfinite().all(), self.record, self.record.clamp(max=code))

    def settle(self, trainer, pl_module, per_rank: np.ndarray) -> None:
        """With every rank's record (one value per rank) on the host: report the first failing call."""
        first = float(np.min(per_rank))
        self._fresh = True
        try:
            if math.isfinite(first) and "nonfinite" not in self.warned:
                call, what = divmod(int(first), 2)
                mine = bool(per_rank[trainer.global_rank] == first)
                self._report(trainer, pl_module, call, what, mine)
        finally:
            self._starts = {}

    def at_epoch_end(self, trainer, pl_module) -> None:
        if not self.in_step:
            gathered = trainer.strategy.all_gather(self.record).reshape(trainer.world_size)
            self.settle(trainer, pl_module, gathered.cpu().numpy())

    def statistics(self, trainer, step: int, activations: np.ndarray, gradients: np.ndarray) -> None:
        """At a logging step, whether each layer's statistics of its outputs (`activations`) and of their
        gradients are finite: what the per-step check cannot see (module docstring). All ranks hold the
        same reduced sums, so they agree without a word."""
        if "nonfinite" in self.warned:
            return
        if not activations.all():
            found = ("activation", int(np.flatnonzero(~activations)[0]))
        elif not gradients.all() and self._accumulator.loss_scaler is None:
            found = ("gradient", int(np.flatnonzero(~gradients)[-1]))  # nearest the output: where it starts
        else:
            return
        self._stop_or_warn(trainer, _message(step, found, self.names))

    def _report(self, trainer, pl_module, call: int, what: int, mine: bool) -> None:
        """Replay the failing call on every rank — a collective inside the forward (SyncBatchNorm's) must
        meet its peers — and agree on what the ranks where it failed (`mine`) found; stop or warn. Off the
        CPU a rank where it did not fail replays what it kept, a later step's weights and batch: only its
        part in the collectives counts."""
        started = self._starts[call]
        armed, self._accumulator.armed = self._accumulator.armed, False
        try:
            found = replay.replay(trainer, pl_module, self.layers, started, self._kept)
        finally:
            self._accumulator.armed = armed
        found = self._agree(trainer, found if mine else None)
        self._stop_or_warn(trainer, _message(started.step, found, self.names, seen=WHAT[what]))

    def _agree(self, trainer, found):
        """The finding of the lowest rank that has one: (what, layer index) or None."""
        if trainer.world_size == 1:
            return found
        code = [WHAT.index(found[0]) + 1, -1 if found[1] is None else found[1]] if found else [0, -1]
        local = torch.tensor(code, dtype=torch.float64, device=trainer.strategy.root_device)
        rows = trainer.strategy.all_gather(local).reshape(trainer.world_size, 2).cpu().tolist()
        what, layer = next((row for row in rows if row[0] > 0), (0, -1))
        return (WHAT[int(what) - 1], None if layer < 0 else int(layer)) if what else None

    def _stop_or_warn(self, trainer, message: str) -> None:
        if self.on_nonfinite == "stop":
            raise NonFiniteError(message)
        self.warned.add("nonfinite")
        if trainer.is_global_zero:
            log.warning(f"{message} (stats.on_nonfinite=warn: training goes on)")


def _total_norm(grads: list[Tensor]) -> Tensor:
    """The gradients' 2-norm as clipping computes it (`torch.nn.utils.get_total_norm`: one norm per
    tensor in a few multi-tensor kernels, then their norm), for gradients on one device — every Lightning
    strategy keeps one per process — without its `.to(device)` of each tensor's norm."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _message(step: int, found, names: list[str], seen: str = "") -> str:
    """One line: what, at which step, in which layer; where a replay found nothing, what the step saw."""
    if found is None:
        return f"non-finite {seen} at step {step} (a replay of the step stayed finite)"
    what, layer = found
    return f"non-finite {what} at step {step}" + ("" if layer is None else f" in layer {names[layer]}")
