"""`VarianceMonitor`: per-layer activation and gradient variance, correlations between samples and
channel means while a model trains, next to the mean-field theory of the model's own activations
(`propagation`), with the first layer that fails at initialisation named and non-finite values
stopping the run (`nonfinite.py`).

Where each piece runs, in Lightning 2.x's hook order for one training batch:
  on_train_batch_start  `trainer.global_step` is N, the step this batch belongs to (0 = the weights as
                        initialised). Note what a replay of the step would start from; on a logging step
                        (N % every_n_steps == 0) arm the statistics, count the batch's samples and
                        reduce the parameters the theory reads (batch norm's, Fixup's scalars) on the
                        device.
  forward               when armed, hooks add the output, input and weight statistics and hook the
                        output's gradient; otherwise they return at once.
  on_before_backward    is the loss finite?
  backward              the gradient hooks add d(loss)/d(output), He's backward quantity.
  on_before_optimizer_step  where the run clips by norm: is the gradients' norm finite? On a CPU,
                        a failed check stops the step here, before the optimizer.
  optimizer step        global_step becomes N + 1.
  on_train_batch_end    if step N was armed and the optimizer has stepped, it is finalised: one
                        all-gather, one copy of the statistics (and of the non-finite check's record) to
                        the host, one of the theory's parameters where the model has any, logging, and
                        the non-finite check of what the record and the statistics say.
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
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from lightning.pytorch import Callback
from lightning.pytorch.utilities.data import extract_batch_size
from torch import Tensor, nn
from torch.nn.init import _calculate_fan_in_and_fan_out

from template.errors import UsageError
from template.monitor import criteria, jacobian, nonfinite, plots, publish
from template.monitor.accumulator import Accumulator
from template.monitor.nonfinite import ON_NONFINITE
from template.monitor.snapshot import ACT, GRAD, INPUT, Snapshot
from template.theory import band, spectrum
from template.theory.propagation import ELEMENTWISE_MODULES, Propagation

log = logging.getLogger(__name__)


# Per layer, logged as `<key>/<layer>` and kept in summary.json's at_init (docs/monitor.md).
LOGGED_KEYS = (
    "act_var", "act_var_predicted", "act_var_theory", "act_var_band_low", "act_var_band_high",
    "grad_var", "grad_var_theory", "chi", "corr", "corr_theory", "act_chmean_sq", "act_chvar",
)  # fmt: skip


JACOBIAN_WHEN = ("init", "every", "never")  # stats.jacobian: at step 0, at every logging step, never
# Scalars `jacobian/<key>` (docs/theory.md, "The Jacobian's spectrum") and
# `jacobian_partial[_theory]/<layer>`.
JACOBIAN_KEYS = (
    "sv2_mean", "sv2_mean_stderr", "sv2_mean_ci95", "sv2_mean_theory",
    "sv2_nvar", "sv2_nvar_stderr", "sv2_nvar_ci95", "sv2_nvar_theory", "sv_max",
)  # fmt: skip


def monitored_layers(model: nn.Module, modules: Sequence[str]) -> list[tuple[str, nn.Module]]:
    """The model's modules whose class, or a base class, is named in `modules` (stats.modules)."""
    return [
        (name, m) for name, m in model.named_modules() if any(c.__name__ in modules for c in type(m).__mro__)
    ]


class VarianceMonitor(Callback):
    """Per-layer variance statistics at step 0 and every `every_n_steps`, logged to every logger.

    Monitors the modules of `pl_module.model` (or of the LightningModule itself, if it has no
    `.model`) whose class, or a base class, is named in `modules`. `at_init` holds the step-0
    statistics in summary.json's `at_init` schema once fit has run.
    """

    # Where the per-step non-finite check reads the loss: on the host, in the step, on a CPU; on the
    # device, read at logging steps, elsewhere (`nonfinite.py`). Where it reads on the host, so do the
    # statistics' checks of their float32 sums (`accumulator.py`). The tests take the second path on a CPU.
    checks_in_step = staticmethod(nonfinite.checks_in_step)

    def __init__(
        self,
        every_n_steps: int = 50,
        modules: Sequence[str] = ("Conv2d", "Linear"),
        histogram_bins: int = 64,
        vanish_factor: float = 1e-2,
        explode_factor: float = 1e2,
        band_level: float = 0.99,
        on_nonfinite: str = "stop",
        jacobian: str = "never",
        jacobian_samples: int = 2,
        jacobian_probes: int = 8,
        jacobian_from: str | None = None,
        jacobian_to: str | None = None,
        plots_dir: Path | str | None = None,
    ):
        if every_n_steps < 1:
            raise UsageError(f"stats.every_n_steps={every_n_steps} must be a positive integer")
        if on_nonfinite not in ON_NONFINITE:
            raise UsageError(
                f"stats.on_nonfinite={on_nonfinite!r} is unknown; choose one of: {', '.join(ON_NONFINITE)}"
            )
        self.every_n_steps = every_n_steps
        self.modules = tuple(modules)
        self.histogram_bins = histogram_bins
        self.vanish_factor = vanish_factor
        self.explode_factor = explode_factor
        if not 0 < band_level < 1:
            raise UsageError(f"stats.band_level={band_level} must lie strictly between 0 and 1")
        self.band_level = band_level
        self.on_nonfinite = on_nonfinite
        if jacobian not in JACOBIAN_WHEN:
            raise UsageError(
                f"stats.jacobian={jacobian!r} is unknown; choose one of: {', '.join(JACOBIAN_WHEN)}"
            )
        self.jacobian, self.jacobian_samples, self.jacobian_probes = (
            jacobian,
            jacobian_samples,
            jacobian_probes,
        )
        self.jacobian_span = (jacobian_from, jacobian_to)
        self._spectrum: dict | None = None
        self._dense = None
        self.plots_dir = None if plots_dir is None else Path(plots_dir)
        self.at_init: dict | None = None
        self.history: list[tuple[int, list[float]]] = []  # (step, act_var per layer) of each logging step
        self._warned: set[str] = set()
        self._accumulator: Accumulator | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        model = getattr(pl_module, "model", pl_module)
        model = getattr(model, "_orig_mod", model)  # torch.compile: hook the modules it wraps
        layers = monitored_layers(model, self.modules)
        if not layers:
            types = sorted({type(m).__name__ for m in model.modules()})
            raise UsageError(
                f"stats.modules={list(self.modules)} matches no module of the model; "
                f"its module types are: {', '.join(types)}"
            )
        self._names = [name for name, _ in layers]
        for key, name in zip(("stats.jacobian_from", "stats.jacobian_to"), self.jacobian_span, strict=True):
            if name is not None and name not in self._names:
                raise UsageError(
                    f"{key}={name!r} is not a monitored layer; choose one of: {', '.join(self._names)}"
                )
        self._model = model
        self._fans = [_fans(m) for _, m in layers]
        self._propagation = Propagation(model, self._names)
        modules, in_step = [m for _, m in layers], self.checks_in_step(pl_module.device)
        self._accumulator = Accumulator(modules, pl_module.device, model, host_reads=in_step)
        self._accumulator.loss_scaler = getattr(trainer.precision_plugin, "scaler", None)
        self._watch = nonfinite.Watch(
            self._names, modules, self.on_nonfinite, self._accumulator, pl_module, self._warned, in_step
        )

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self._accumulator is not None:
            self._accumulator.remove()
            self._accumulator = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._step = trainer.global_step
        accumulator = self._accumulator
        accumulator.armed = self._step % self.every_n_steps == 0
        if accumulator.armed:
            accumulator.count_samples(extract_batch_size(batch))
            self._propagation.read_parameters()  # before the update, on the device until finalised
        wanted = self.jacobian == "every" or (self.jacobian == "init" and self._step == 0)
        if accumulator.armed and wanted and trainer.is_global_zero:
            self._measure_spectrum(batch)
        self._watch.start(trainer, pl_module, batch, batch_idx)  # after the spectrum's random probes

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self._watch.loss(loss)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self._watch.before_optimizer_step(trainer, pl_module, optimizer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        accumulator = self._accumulator
        if accumulator.armed and trainer.global_step > self._step:
            self._finalise(trainer, pl_module, self._step)
        accumulator.armed = False

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._watch.at_epoch_end(trainer, pl_module)

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
        self._warned.clear()  # in place: the non-finite watch shares the set
        self._warned.update(state_dict["warned"])

    def _measure_spectrum(self, batch) -> None:
        """Before the forward of a logging step: the weights this step's statistics describe."""
        inputs = batch[0] if isinstance(batch, list | tuple) else batch
        x = inputs[: self.jacobian_samples]
        accumulator = self._accumulator
        accumulator.armed = False  # the monitor's hooks sit this out
        try:
            span = jacobian.stretch(self._model, self._names, x, *self.jacobian_span)
            self._spectrum = jacobian.measure(self._model, x, span, self.jacobian_probes)
            self._span, self._weight_terms = span, spectrum.weight_terms(self._model, span)
            self._position_theory = jacobian.position_theory(self._model, span, _activation(self._model), x)
            if self._step == 0:  # the histogram's exact spectrum, where the Jacobian is small enough
                self._dense = jacobian.dense(self._model, x, span)
        finally:
            accumulator.armed = True

    def _spectrum_with_theory(self, stats: dict[str, np.ndarray]) -> dict:
        expected = self._position_theory or spectrum.mean_field(
            self._span,
            self._names,
            stats["act_var_theory"],
            stats["grad_var_theory"],
            _activation(self._model),
            self._weight_terms,
        )
        reported = dict(self._spectrum)
        # mean_field, or position (no layer of the stretch mixes positions)
        reported["theory"] = expected["kind"]
        reported["sv2_mean_theory"] = _number(expected["sv2_mean"])
        reported["sv2_nvar_theory"] = _number(expected["sv2_nvar"])
        reported["partial"] = [
            {
                **{key: _number(v) if isinstance(v, float) else v for key, v in row.items()},
                "sv2_mean_theory": _number(value),
            }
            for row, value in zip(reported["partial"], expected["partial"], strict=True)
        ]
        return {key: _number(v) if isinstance(v, float) else v for key, v in reported.items()}

    def _finalise(self, trainer, pl_module, step: int) -> None:
        with_values = trainer.is_global_zero and publish.wandb_logger(trainer) is not None
        record = self._watch.record
        snapshot = self._accumulator.snapshot(trainer.strategy, trainer.world_size, with_values, record)
        stats = self._layer_stats(snapshot, trainer.world_size)
        self.history.append((step, [float(v) for v in stats["act_var"]]))
        if step == 0:
            failure = criteria.first_failure(
                self._names,
                stats["act_var"],
                stats["act_var_theory"],
                stats["act_var_band_low"],
                stats["act_var_band_high"],
                self.vanish_factor,
                self.explode_factor,
            )
            self.at_init = self._summary(stats, snapshot.samples, failure)
        jacobian_spectrum = None
        if self._spectrum is not None:
            jacobian_spectrum = self._spectrum_with_theory(stats)
            self._spectrum = None
            if step == 0:
                self.at_init["jacobian"] = jacobian_spectrum
        if trainer.is_global_zero:
            self._log(trainer, step, stats, snapshot)
            if jacobian_spectrum is not None:
                self._log_spectrum(trainer, step, jacobian_spectrum)
            self._report(step, stats)
        if not self._watch.in_step:
            self._watch.settle(trainer, pl_module, snapshot.per_rank[:, 0])
        self._watch.statistics(trainer, step, snapshot.finite(ACT)[:-1], snapshot.finite(GRAD)[:-1])

    def _report(self, step: int, stats: dict[str, np.ndarray]) -> None:
        """One warning for a failure at init; during training one line of drift, never "exploding"."""
        failure = (self.at_init or {}).get("first_failure")
        if step == 0 and failure is not None:
            if failure["reason"] == "band":
                against = (
                    f"outside the {self.band_level:g} finite-width band, {failure['vs_theory']:.3g} x theory"
                )
            elif failure["reason"] == "theory":
                against = "the mean-field theory itself leaves the range"
            else:
                against = "no theory for this layer"
            log.warning(
                f"layer {failure['layer']}: activation variance {failure['factor']:.3g} x the first layer's "
                f"at initialisation ({failure['direction']}: {against}; stats.vanish_factor="
                f"{self.vanish_factor:g}, stats.explode_factor={self.explode_factor:g})"
            )
        if step == 0 or self.at_init is None or "drift" in self._warned:
            return
        at_init = [layer["act_var"] or math.nan for layer in self.at_init["layers"]]
        moved = criteria.drift(self._names, stats["act_var"], at_init, self.explode_factor)
        if moved is not None:
            self._warned.add("drift")
            name, factor = moved
            vs_theory = (
                stats["act_var"][self._names.index(name)] / stats["act_var_theory"][self._names.index(name)]
            )
            log.info(
                f"layer {name}: activation variance has drifted to {factor:.3g} x its value at step 0 "
                f"({vs_theory:.3g} x theory) by step {step}, as training changes the weights"
            )

    def _layer_stats(self, snapshot: Snapshot, world_size: int) -> dict[str, np.ndarray]:
        # rows: the monitored layers, then the model's input
        act, in_square = snapshot.variance(ACT)[:-1], snapshot.mean_square(INPUT)
        grad = snapshot.variance(GRAD)[:-1] / world_size**2
        correlation = snapshot.correlation()
        fan_in = np.array([fans[0] if fans else np.nan for fans in self._fans])
        weight_var, bias_var = snapshot.weight_vars.T
        variances = {
            name: (float(weight_var[i]), float(bias_var[i]))
            for i, name in enumerate(self._names)
            if np.isfinite(weight_var[i])
        }
        shape = snapshot.input_shape
        input_moment, input_corr = in_square[-1], correlation[-1]
        if shape is not None and np.isfinite(input_moment):
            top = (
                grad[self._names.index(self._propagation.output_layer)]
                if self._propagation.output_layer
                else np.nan
            )
            chained = self._propagation.run(
                shape, input_moment, input_corr * input_moment, variances, top, snapshot.samples
            )
        else:
            chained = self._propagation.run((1,), np.nan, np.nan, variances, np.nan)
        chmean_sq, chvar = snapshot.channel_moments()
        return {
            "act_var": act,
            "act_var_predicted": band.predicted(fan_in, weight_var, in_square[:-1], bias_var),
            "grad_var": grad,
            "corr": correlation[:-1],
            "act_chmean_sq": chmean_sq,
            "act_chvar": chvar,
            **band.theory_lines(chained, self.band_level),
        }

    def _summary(self, stats: dict[str, np.ndarray], samples: int, failure: dict | None) -> dict:
        layers = [
            {
                "name": name,
                "fan_in": fans[0] if fans else None,
                "fan_out": fans[1] if fans else None,
                **{key: _number(stats[key][i]) for key in LOGGED_KEYS},
            }
            for i, (name, fans) in enumerate(zip(self._names, self._fans, strict=True))
        ]
        return {"layers": layers, "batch_size": samples, "first_failure": failure}

    def _log(self, trainer, step: int, stats: dict[str, np.ndarray], snapshot: Snapshot) -> None:
        metrics = {
            f"{key}/{name}": float(value)
            for key, values in stats.items()
            for name, value in zip(self._names, values, strict=True)
            if math.isfinite(value)
        }
        histograms = None
        if publish.wandb_logger(trainer) is not None:
            histograms = publish.histograms(self._names, snapshot.values, self.histogram_bins)
        publish.scalars(trainer, metrics, step, histograms)
        if step == 0 and self._publishing(trainer):
            image = plots.variance_vs_depth(self._names, stats, self.band_level, step)
            publish.picture(trainer, self.plots_dir, "variance_vs_depth", image, step)

    def _log_spectrum(self, trainer, step: int, spectrum: dict) -> None:
        metrics = {
            f"jacobian/{key}": spectrum[key] for key in JACOBIAN_KEYS if isinstance(spectrum.get(key), float)
        }
        for row in spectrum["partial"]:
            for key, value in (
                ("jacobian_partial", row["sv2_mean"]),
                ("jacobian_partial_theory", row["sv2_mean_theory"]),
            ):
                if value is not None:
                    metrics[f"{key}/{row['layer']}"] = value
        publish.scalars(trainer, metrics, step)
        if step == 0 and self._publishing(trainer):
            image = plots.jacobian_spectrum(spectrum, None if self._dense is None else self._dense.numpy())
            publish.picture(trainer, self.plots_dir, "jacobian_spectrum", image, step)

    def _publishing(self, trainer) -> bool:
        return self.plots_dir is not None or publish.wandb_logger(trainer) is not None


def _activation(model):
    return next((m for m in model.modules() if isinstance(m, ELEMENTWISE_MODULES)), None)


def _fans(module) -> tuple[int, int] | None:
    weight = getattr(module, "weight", None)
    return _calculate_fan_in_and_fan_out(weight) if isinstance(weight, Tensor) and weight.dim() >= 2 else None


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: a statistic that is not finite is recorded as null."""
    return float(value) if math.isfinite(value) else None
