"""`VarianceMonitor`: per-layer activation and gradient variance while a model trains, next to He's
theory, with the first failing layer named and non-finite values stopping the run.

Where each piece runs, in Lightning 2.x's hook order for one training batch:
  on_train_batch_start  `trainer.global_step` is N, the step this batch belongs to (0 = the weights as
                        initialised). Probe every step; on a logging step (N % every_n_steps == 0)
                        also arm the full statistics and count the batch's samples.
  forward               hooks probe each output's norm; when armed they add the output, input and
                        weight statistics and hook the output's gradient.
  backward              the gradient hooks add d(loss)/d(output), He's backward quantity.
  optimizer step        global_step becomes N + 1.
  on_train_batch_end    the probes become a device-side record of the first non-finite step; if
                        step N was armed and the optimizer has stepped, it is finalised: one
                        all-gather, one copy to the host, logging, the non-finite check.
Under gradient accumulation all micro-batches of step N are pooled, and finalised after the step.
The weights behind `act_var_predicted` are read in the forward hook, before the update.

Under DDP every rank gathers the sums, so the statistics are those of the global batch and every rank
takes the same stop decision; only rank 0 logs. DDP averages gradients over ranks, so the gradient
that reaches the weights is 1/world_size of each rank's local one; the gradient statistics are scaled
to match, which makes them equal to one process on the same samples.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from lightning.pytorch import Callback
from lightning.pytorch.utilities.data import extract_batch_size
from torch import Tensor
from torch.nn.init import _calculate_fan_in_and_fan_out

from template.errors import UsageError
from template.monitor import plots, publish, theory
from template.monitor.accumulator import ACT, GRAD, INPUT, Accumulator, Snapshot

log = logging.getLogger(__name__)


# Per layer in summary.json's at_init: DESIGN.md's fields, plus the chained theory for comparison plots.
SUMMARY_KEYS = ("act_var", "act_var_predicted", "act_var_theory", "grad_var")


class NonFiniteError(RuntimeError):
    """A non-finite activation or loss. The message is one line, for the CLI to print as is."""


class VarianceMonitor(Callback):
    """Per-layer variance statistics at step 0 and every `every_n_steps`, logged to every logger.

    Monitors the modules of `pl_module.model` (or of the LightningModule itself, if it has no
    `.model`) whose class, or a base class, is named in `modules`. `at_init` holds the step-0
    statistics in summary.json's `at_init` schema once fit has run.
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        modules: Sequence[str] = ("Conv2d", "Linear"),
        histogram_bins: int = 64,
        vanish_factor: float = 1e-2,
        explode_factor: float = 1e2,
        on_nonfinite: str = "stop",
        plots_dir: Path | str | None = None,
    ):
        if every_n_steps < 1:
            raise UsageError(f"stats.every_n_steps={every_n_steps} must be a positive integer")
        if on_nonfinite not in ("stop", "warn"):
            raise UsageError(f"stats.on_nonfinite={on_nonfinite!r} is unknown; choose one of: stop, warn")
        self.every_n_steps = every_n_steps
        self.modules = tuple(modules)
        self.histogram_bins = histogram_bins
        self.vanish_factor = vanish_factor
        self.explode_factor = explode_factor
        self.on_nonfinite = on_nonfinite
        self.plots_dir = None if plots_dir is None else Path(plots_dir)
        self.at_init: dict | None = None
        self.history: list[tuple[int, list[float]]] = []  # (step, act_var per layer) of each logging step
        self._warned: set[str] = set()
        self._accumulator: Accumulator | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        model = getattr(pl_module, "model", pl_module)
        model = getattr(model, "_orig_mod", model)  # torch.compile: hook the modules it wraps
        layers = [(name, m) for name, m in model.named_modules() if self._monitored(m)]
        if not layers:
            types = sorted({type(m).__name__ for m in model.modules()})
            raise UsageError(
                f"stats.modules={list(self.modules)} matches no module of the model; "
                f"its module types are: {', '.join(types)}"
            )
        self._names = [name for name, _ in layers]
        self._fans = [_fans(m) for _, m in layers]
        self._gain = getattr(model, "activation_gain", 0.5)
        self._accumulator = Accumulator([m for _, m in layers], pl_module.device)
        self._accumulator.loss_scaler = getattr(trainer.precision_plugin, "scaler", None)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self._accumulator is not None:
            self._accumulator.remove()
            self._accumulator = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._step = trainer.global_step
        accumulator = self._accumulator
        accumulator.active = True
        accumulator.armed = self._step % self.every_n_steps == 0
        if accumulator.armed:
            accumulator.count_samples(extract_batch_size(batch))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        accumulator = self._accumulator
        accumulator.close_step(self._step, _loss(outputs))
        accumulator.active = False
        if accumulator.armed and trainer.global_step > self._step:
            self._finalise(trainer, self._step)
        accumulator.armed = False

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._check_finite(trainer, self._accumulator.first_bad_steps(trainer.strategy, trainer.world_size))

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero and self.history and self._publishing(trainer):
            steps = [step for step, _ in self.history]
            image = plots.variance_heatmap(self._names, steps, np.array([v for _, v in self.history]))
            publish.picture(trainer, self.plots_dir, "variance_heatmap", image, steps[-1])

    def state_dict(self) -> dict:
        return {"at_init": self.at_init, "history": self.history, "warned": sorted(self._warned)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.at_init = state_dict["at_init"]
        self.history = [(step, list(values)) for step, values in state_dict["history"]]
        self._warned = set(state_dict["warned"])

    def _monitored(self, module) -> bool:
        return any(cls.__name__ in self.modules for cls in type(module).__mro__)

    def _finalise(self, trainer, step: int) -> None:
        with_values = trainer.is_global_zero and publish.wandb_logger(trainer) is not None
        snapshot = self._accumulator.snapshot(trainer.strategy, trainer.world_size, with_values)
        stats = self._layer_stats(snapshot, trainer.world_size)
        self.history.append((step, [float(v) for v in stats["act_var"]]))
        failure = theory.first_failure(self._names, stats["act_var"], self.vanish_factor, self.explode_factor)
        if step == 0:
            self.at_init = self._summary(stats, snapshot.samples, failure)
        if trainer.is_global_zero:
            self._log(trainer, step, stats, snapshot)
            if failure is not None and "failure" not in self._warned:
                self._warned.add("failure")
                log.warning(
                    f"layer {failure['layer']}: activation variance {failure['factor']:.3g} x the "
                    f"first layer's at step {step} ({failure['direction']}; stats.vanish_factor="
                    f"{self.vanish_factor:g}, stats.explode_factor={self.explode_factor:g})"
                )
        self._check_finite(trainer, snapshot.first_bad)

    def _layer_stats(self, snapshot: Snapshot, world_size: int) -> dict[str, np.ndarray]:
        act, in_square = snapshot.variance(ACT), snapshot.mean_square(INPUT)
        fan_in = np.array([fans[0] if fans else np.nan for fans in self._fans])
        weight_var, bias_var = snapshot.weight_vars.T
        weighted = [i for i, fans in enumerate(self._fans) if fans]
        chained = np.full(len(self._names), np.nan)
        if weighted:  # from the first weight layer's input, taken as the raw input
            chained[weighted] = theory.chained(
                in_square[weighted[0]], fan_in[weighted], weight_var[weighted], bias_var[weighted], self._gain
            )
        return {
            "act_var": act,
            "act_var_predicted": theory.predicted(fan_in, weight_var, in_square, bias_var),
            "act_var_theory": chained,
            "grad_var": snapshot.variance(GRAD) / world_size**2,
        }

    def _summary(self, stats: dict[str, np.ndarray], samples: int, failure: dict | None) -> dict:
        layers = [
            {
                "name": name,
                "fan_in": fans[0] if fans else None,
                "fan_out": fans[1] if fans else None,
                **{key: _number(stats[key][i]) for key in SUMMARY_KEYS},
            }
            for i, (name, fans) in enumerate(zip(self._names, self._fans, strict=True))
        ]
        return {"layers": layers, "batch_size": samples, "first_failure": failure}

    def _log(self, trainer, step: int, stats: dict[str, np.ndarray], snapshot: Snapshot) -> None:
        metrics = {
            f"{key}/{name}": float(value)
            for key, values in stats.items()
            for name, value in zip(self._names, values, strict=True)
            if not math.isnan(value)
        }
        publish.scalars(trainer, metrics, step)
        if publish.wandb_logger(trainer) is not None:
            publish.histograms(trainer, self._names, snapshot.values, self.histogram_bins, step)
        if step == 0 and self._publishing(trainer):
            image = plots.variance_vs_depth(
                self._names,
                stats["act_var"],
                stats["act_var_predicted"],
                stats["act_var_theory"],
                stats["grad_var"],
                step,
            )
            publish.picture(trainer, self.plots_dir, "variance_vs_depth", image, step)

    def _publishing(self, trainer) -> bool:
        return self.plots_dir is not None or publish.wandb_logger(trainer) is not None

    def _check_finite(self, trainer, first_bad: np.ndarray) -> None:
        """Stop (or warn once) naming the first step with a non-finite value, and its first layer."""
        if not np.isfinite(first_bad).any() or "nonfinite" in self._warned:
            return
        step = int(first_bad.min())
        layers = np.flatnonzero(first_bad[:-1] == step)
        message = (
            f"non-finite activation at step {step} in layer {self._names[layers[0]]}"
            if layers.size
            else f"non-finite loss at step {step}"
        )
        if self.on_nonfinite == "stop":
            raise NonFiniteError(message)
        self._warned.add("nonfinite")
        if trainer.is_global_zero:
            log.warning(f"{message} (stats.on_nonfinite=warn: training goes on)")


def _fans(module) -> tuple[int, int] | None:
    weight = getattr(module, "weight", None)
    return _calculate_fan_in_and_fan_out(weight) if isinstance(weight, Tensor) and weight.dim() >= 2 else None


def _loss(outputs) -> Tensor | None:
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    return loss if isinstance(loss, Tensor) else None


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: a statistic that is not finite is recorded as null."""
    return float(value) if math.isfinite(value) else None
