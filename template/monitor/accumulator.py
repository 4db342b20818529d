"""The device side of the monitor: what runs inside the training step, and the one copy to the host.

Why it is shaped this way:
- A step that does not log must not make the host wait for the device: no `.item()`, no
  `if tensor:`, no copy to the CPU. Everything per step is a kernel launch whose result stays on the
  device. On a step that does not log these hooks do nothing at all: what every step checks — that its
  loss is finite — is `nonfinite.py`'s, from values the step computes anyway.
- Hooks are registered once and gated by a Python flag, `armed` (accumulate the statistics this
  step). Adding and removing hooks would make torch.compile recompile; a flag costs it one graph per
  value, compiled once. What an armed hook measures runs outside the compiler's graphs
  (`torch.compiler.disable`): a graph break on logging steps only, the eager code exactly, and no
  guard on the ledger's Python lists, which grow with each call (traced, they made one graph per
  layer).
- Sums, not variances, because sums add: over the micro-batches of an accumulated step, over the
  calls of a shared layer, and over DDP ranks. Each call adds its count n, n·mean and n·var (two
  passes: the mean, then the centred values, stable in float32; on a CPU a gradient whose mean is small
  beside its spread skips the centring, `rows.py`) and n·mean² — kept by the hooks as each call's
  moments and summed at the snapshot in one batch for all layers (`ledger.py`); the pooled variance is then
  (Σ n·var + Σ n·mean² − (Σ n·mean)² / N) / (N − 1), in float64, without catastrophic cancellation.
  The same per channel gives the channel means apart from the channel variances (Brock et al. 2021).
- On a logging step the cost is memory traffic more than arithmetic: on a CPU each pass over a
  CIFAR-sized output takes about 0.3 ms (2M values, 2 threads), so each tensor is read as few times as
  the precision allows (`rows.py`).
- Correlations between samples from sums too: with u_i each sample's output as a unit vector,
  the mean cosine over the pairs of the batch is (‖Σ u_i‖² − B) / (B (B − 1)), and Σ u_i adds over
  micro-batches and ranks. The model's own input gets the same sums, where the theory starts.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import Tensor, nn

from template.monitor import rows
from template.monitor.ledger import Ledger, Moments
from template.monitor.snapshot import ACT, COLUMNS, CORR, GRAD, INPUT, Slices, Snapshot

HISTOGRAM_SAMPLE = 8192  # output values per layer kept for the histogram, evenly strided
ROUGH_SAMPLES = 16  # samples a layer's rough channel means are taken over (`_add_activation`)


class Accumulator:
    def __init__(
        self,
        modules: list[nn.Module],
        device: torch.device,
        model: nn.Module | None = None,
        host_reads: bool | None = None,
    ):
        """`host_reads`: whether reading a result on the host costs nothing (`_unscaled`); by default,
        on a CPU."""
        self.layers = len(modules)
        self.host_reads = device.type == "cpu" if host_reads is None else host_reads
        dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        # rows: the layers, the model's input, then the samples counter
        self.sums = torch.zeros(self.layers + 2, COLUMNS, dtype=dtype, device=device)
        self.weight_vars = torch.full((self.layers, 2), math.nan, dtype=dtype, device=device)
        self._values: list[Tensor | None] = [None] * self.layers
        self._unit_sums: list[Tensor | None] = [None] * (self.layers + 1)  # last: the model's input
        self._channels: list[Tensor | None] = [None] * self.layers
        self._ledger = Ledger()  # what the hooks find, added into `sums` at the snapshot
        self.input_shape: tuple[int, ...] | None = None
        self._scratch: Tensor | None = None  # the logging step's one temporary, reused (`_temporary`)
        self.armed = False
        self.loss_scaler = None  # 16-mixed's GradScaler: the gradients the hooks see are scaled by it
        self._handles = [m.register_forward_hook(partial(self._forward, i)) for i, m in enumerate(modules)]
        if model is not None:
            self._handles.append(model.register_forward_pre_hook(self._model_input))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def _unscaled(self) -> bool:
        """Whether to try the sums on the values as they are, checked on the host afterwards (`rows.trusted`):
        where reading a result costs nothing (a CPU). That saves two passes over the tensor (its largest
        magnitude, the division by it) of the four to six each statistic takes. Elsewhere the host would
        wait for the device at every layer, so the values are always scaled."""
        return self.host_reads

    def _temporary(self, like: Tensor) -> Tensor:
        """An uninitialised tensor shaped like `like`, on the memory of the logging step's previous
        temporaries: each statistic needs one output-sized temporary, and a fresh one per layer costs
        the allocator's page faults — on a CPU as much as the arithmetic (0.44 against 0.22 ms to divide
        2M float32 values at two threads). Released when the step's snapshot is taken."""
        scratch, size = self._scratch, like.numel()
        if (
            scratch is None
            or scratch.numel() < size
            or (scratch.dtype, scratch.device) != (like.dtype, like.device)
        ):
            scratch = self._scratch = torch.empty(size, dtype=like.dtype, device=like.device)
        return scratch[:size].view(like.shape)

    def count_samples(self, samples: int) -> None:
        self._ledger.count((self.layers + 1) * COLUMNS, samples)

    def _model_input(self, module: nn.Module, inputs: tuple) -> None:
        if self.armed:
            self._measure_input(inputs)

    @torch.compiler.disable(reason="the monitor measures eagerly")
    def _measure_input(self, inputs: tuple) -> None:
        if not inputs or not isinstance(inputs[0], Tensor) or inputs[0].dim() < 2:
            return
        x = inputs[0].detach()
        self.input_shape = tuple(x.shape[1:])
        row = self.layers
        self._add_input(row, x)
        self._add_units(row, x)

    def _forward(self, index: int, module: nn.Module, inputs: tuple, output) -> None:
        if self.armed:
            self._measure(index, module, inputs, output)

    @torch.compiler.disable(reason="the monitor measures eagerly")
    def _measure(self, index: int, module: nn.Module, inputs: tuple, output) -> None:
        if not isinstance(output, Tensor):
            return
        sample_squares = self._add_activation(index, output)
        self._add_units(index, output, sample_squares)
        if inputs and isinstance(inputs[0], Tensor):
            self._add_input(index, inputs[0])
        weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
        if isinstance(weight, Tensor) and weight.dim() >= 2:
            self.weight_vars[index, 0] = torch.var(weight.detach(), correction=0)
            self.weight_vars[index, 1] = torch.var(bias.detach(), correction=0) if bias is not None else 0.0
        if self._values[index] is None:
            flat = output.detach().reshape(-1)
            self._values[index] = flat[:: max(1, flat.numel() // HISTOGRAM_SAMPLE)][:HISTOGRAM_SAMPLE].clone()
        if output.requires_grad:
            output.register_hook(partial(self._backward, index))

    def _add_input(self, row: int, x: Tensor) -> None:
        """The input block: its count and Σ x² (He's E[x_l²])."""
        self._ledger.count(row * COLUMNS + INPUT, x.numel())
        self._ledger.additions.append((row * COLUMNS + INPUT + 1, self._squared_norm(x)))

    def _squared_norm(self, x: Tensor) -> Tensor:
        """Σ x² in float64: the float32 squares where they can be trusted (`_unscaled`; row by row where x
        can be cut into rows, `rows.py`), else those of the values over their largest magnitude, so that
        finite 1e20s stay finite and 1e-25s do not vanish."""
        x = _float(x)
        if self._unscaled():
            found = rows.sums(rows.as_positions(x), squares_only=True)
            total = found[1].sum() if found else torch.square(x, out=self._temporary(x)).sum().double()
            if rows.trusted(float(total), x.numel()):
                return total
        peak = _scale(x)
        scaled = torch.div(x, peak, out=self._temporary(x))
        return scaled.square_().sum().to(torch.float64) * peak.to(torch.float64) ** 2

    def _backward(self, index: int, grad: Tensor) -> None:
        scale = getattr(self.loss_scaler, "_scale", None)  # private, but the public get_scale() syncs
        self._add(index, GRAD, grad if scale is None else grad.detach() / scale)

    def _add(self, index: int, block: int, x: Tensor) -> None:
        """The moments of all of `x` for the block (the gradients), summed at the snapshot (`ledger.py`).
        Where host reads are free, of the values and squares as they are (`_uncentred`: a gradient's mean
        is usually far below its spread); elsewhere centred on a rough mean, as `_add_activation` centres
        on rough channel means."""
        x = _float(x)
        if x.numel() == 0:
            return
        count, positions = x.numel(), rows.as_positions(x)  # (B, C, positions)
        uncentred = self._uncentred(positions)
        if uncentred is not None:
            self._ledger.moments.append(Moments(index * COLUMNS + block, None, None, *uncentred, count, None))
            return
        rough = x[:: max(1, x.shape[0] // ROUGH_SAMPLES)].mean()  # as in `_add_activation`
        shift, squares, scale, _ = self._centred_sums(positions, rough, per_channel=False)
        self._ledger.moments.append(
            Moments(index * COLUMNS + block, rough, scale, shift, squares, count, None)
        )

    def _uncentred(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """Σx and Σx² of a (B, C, positions) x in float64 from two read-only passes (`rows.py`), where host
        reads are free (`_unscaled`), the float32 squares can be trusted and their cancellation costs
        nothing (`rows.CENTRE_ABOVE`). None elsewhere: the caller centres."""
        found = rows.sums(x) if self._unscaled() else None
        if found is None:
            return None
        total, squares = found[0].sum(), found[1].sum()
        if not rows.trusted(float(squares), x.numel()) or not rows.uncentred_is_accurate(
            total, squares, x.numel()
        ):
            return None
        return total, squares

    def _add_activation(self, index: int, output: Tensor) -> Tensor | None:
        """The moments of each channel (dim 1), from which the ledger makes per channel count, Σ n·mean,
        Σ n·var, Σ n·mean², and the layer's block as their sum over channels (the pooled variance of the
        channels is the variance of all the values). Returns each sample's Σx² where the sums give it (for
        `_add_units`), else None.

        The channel means matter to float64 precision — a channel's mean can dwarf its spread (in a
        plain ReLU net's deeper layers the median channel's squared mean is 20-50 times its variance),
        and the pooling subtracts squared means — so the values are centred on a rough float32 channel
        mean first, and the rough mean's own error is recovered from the same sums: with c = (x −
        rough)/s, the mean is rough + s·Σc/n and the centred sum of squares s²·(Σc² − (Σc)²/n). So the
        rough mean need only be near the mean: it is taken over every k-th sample (16 of them), a
        sixteenth of a pass. Not `x.mean(dtype=float64)`, which copies the output to float64 first (on a
        CPU 2.4 of the 3.6 ms this took for a 2M-value layer at two threads)."""
        x = _float(output)
        if x.numel() == 0:
            return None
        if x.dim() < 2:
            self._add(index, ACT, x)
            return None
        x = rows.as_positions(x)  # (B, C, positions)
        rough = x[:: max(1, x.shape[0] // ROUGH_SAMPLES)].mean(dim=(0, 2), keepdim=True)
        shift, squares, scale, sample_squares = self._centred_sums(x, rough, per_channel=True)
        count = x.numel() // x.shape[1]
        self._ledger.moments.append(
            Moments(index * COLUMNS + ACT, rough.flatten(), scale, shift, squares, count, index)
        )
        return sample_squares

    def _centred_sums(
        self, x: Tensor, centre: Tensor, per_channel: bool
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """Σc and Σc² in the accumulator's dtype, over all of a (B, C, positions) x or per channel, with c =
        (x − centre)/s, and s: 1 (returned as None) where the float32 squares can be trusted (`_unscaled`),
        else x's largest magnitude, so that the centred values lie within ±2 and square without overflow or
        underflow; and, where s is 1 and `rows.sums` takes the centred values, each sample's Σx² (else None).
        Two passes (the centre, then these) are as stable as torch.var_mean's Welford pass, and on a CPU ten
        times faster.

        Where s is 1, the centred values are written once and read twice, `rows.sums`' sum and norms over
        rows, and each sample's Σx² follows from them without a pass of its own (`_sample_squares`).
        Elsewhere, a sum of squares, not
        `torch.linalg.vector_norm` over whole channels, whose float32 sum is off by 7e-4 per channel
        (2M values) where torch's summation is off by 6e-8."""

        def total(t: Tensor) -> Tensor:  # over positions, then samples: twice as fast as dims (0, 2) at once
            return (t.sum(2).sum(0) if per_channel else t.sum()).to(self.sums.dtype)

        centred = torch.sub(x, centre, out=self._temporary(x))
        if self._unscaled():
            found = rows.sums(centred)
            if found is not None and rows.trusted(float(found[1].sum()), x.numel()):
                shift, squares = found  # (B, C) each, float64
                samples = _sample_squares(shift, squares, centre, x.shape[2])
                if per_channel:
                    return shift.sum(0), squares.sum(0), None, samples
                return shift.sum(), squares.sum(), None, samples
            if found is None:
                shift, squares = total(centred), total(centred.square_())
                if rows.trusted(float(squares.sum()), x.numel()):
                    return shift, squares, None, None
            centred = torch.sub(x, centre, out=centred)
        peak = _scale(x)
        centred.div_(peak)  # within ±2
        return total(centred), total(centred.square_()), peak.to(self.sums.dtype), None

    def _add_units(self, row: int, x: Tensor, sample_squares: Tensor | None = None) -> None:
        """Σ u_i of the samples' outputs as unit vectors, and the count and Σ ‖u_i‖² (0 for a zero output).

        Each sample's norm is one float32 reduction of its values (torch.linalg.vector_norm: within 4e-7
        of float64's on 16K-value samples, 2e-6 on 200K-value ones), of the values as they are where every
        norm lies within 2^±100 per value (`_unscaled`), else of the values over their largest magnitude:
        past ~1e19 the squares overflow float32, below ~1e-19 they vanish. Σ u_i is one matrix-vector
        product of the inverse norms with the samples, not a temporary of the unit vectors. Where
        `_add_activation` has the samples' Σx² already (`sample_squares`), the norms are their roots."""
        flat = _float(x).flatten(1)  # (B, D)
        if flat.shape[0] == 0:
            return
        dtype = self.sums.dtype
        norms = None
        if self._unscaled():
            norms = torch.linalg.vector_norm(flat, dim=1) if sample_squares is None else sample_squares.sqrt()
        if norms is None or not _trusted_norms(norms, flat.shape[1]):
            flat = torch.div(flat, _scale(flat), out=self._temporary(flat))  # unit vectors are unchanged
            norms = torch.linalg.vector_norm(flat, dim=1)
        inverse = torch.where(norms > 0, norms.reciprocal(), 0.0).to(flat.dtype)  # a zero output: zero
        total = (inverse @ flat).to(dtype)  # Σ u_i
        previous = self._unit_sums[row]
        self._unit_sums[row] = (
            total if previous is None or previous.shape != total.shape else previous + total
        )
        self._ledger.count(row * COLUMNS + CORR, flat.shape[0])
        self._ledger.units.append((row * COLUMNS + CORR + 1, norms, inverse))  # Σ ‖u_i‖²: 1 each, 0 if zero

    def snapshot(self, strategy, world_size: int, with_values: bool, per_rank: Tensor) -> Snapshot:
        """Reduce over ranks (one all-gather), copy to the host (one `.cpu()`), and reset.

        An all-gather rather than all-reduce because the sums add but `per_rank` (the non-finite check's
        record, `nonfinite.py`) is wanted from each rank; gathering both in one collective keeps it to one
        round trip.
        """
        self._ledger.settle(self.sums, self._channels)
        summed = [self.sums, *[t for t in (*self._unit_sums, *self._channels) if t is not None]]
        size = sum(t.numel() for t in summed)
        shared = torch.cat([*(t.flatten() for t in summed), per_rank.flatten().to(self.sums.dtype)])
        gathered = strategy.all_gather(shared).reshape(world_size, -1)
        parts = [gathered[:, :size].sum(0), gathered[:, size:].flatten(), self.weight_vars.flatten()]
        values = self._values if with_values else [None] * self.layers
        parts += [v.to(self.sums.dtype) for v in values if v is not None]
        host = Slices(torch.cat(parts).cpu().numpy())
        sums = host.take(self.sums.numel()).reshape(self.sums.shape)
        unit_sums = [None if t is None else host.take(t.numel()) for t in self._unit_sums]
        channels = [None if t is None else host.take(t.numel()).reshape(-1, 4) for t in self._channels]
        ranks = host.take(world_size * per_rank.numel()).reshape(world_size, -1)
        weight_vars = host.take(2 * self.layers).reshape(-1, 2)
        sample_values = [None if v is None else host.take(v.numel()) for v in values]
        self.sums.zero_()
        self.weight_vars.fill_(math.nan)
        self._values = [None] * self.layers
        self._unit_sums = [None] * (self.layers + 1)
        self._channels = [None] * self.layers
        self._scratch = None
        return Snapshot(
            sums[:-1],
            int(sums[-1, 0]),
            ranks,
            weight_vars,
            sample_values,
            unit_sums,
            channels,
            self.input_shape,
        )


def _sample_squares(shift: Tensor, squares: Tensor, centre: Tensor, positions: int) -> Tensor | None:
    """Each sample's Σx² from its per-channel Σc and Σc² (B, C) of c = x − centre: Σ_c (Σc² + 2·centre·
    Σc + positions·centre²). The middle term can cancel the others — a sample whose values are far
    below its channels' means, an all-zero one — and then float32's rounding of Σc² (`rows.py`) is
    magnified; where it would be more than doubled for any sample, None (the caller takes the norms
    from the values). Reads the host."""
    point = centre.reshape(1, -1).to(shift.dtype)  # (1, C), or (1, 1) for one centre
    cross = 2 * point * shift
    samples = (squares + cross + positions * point * point).sum(1)
    magnitude = (squares + cross.abs() + positions * point * point).sum(1)
    return samples if bool((magnitude <= 2 * samples).all()) else None


def _float(x: Tensor) -> Tensor:
    x = x.detach()
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _trusted_norms(norms: Tensor, size: int) -> bool:
    """Whether every sample's float32 norm over `size` values neither overflowed nor lost its values to
    underflow (a zero output included: told apart from an underflow only by scaling), and its inverse
    is a normal float32 number."""
    low, high = torch.aminmax(norms)
    return float(low) >= math.sqrt(size * rows.SMALLEST_MEAN_SQUARE) and float(high) <= 2.0**100


def _peak(x: Tensor) -> Tensor:
    """The largest magnitude, max(max x, −min x), from one pass (`torch.aminmax`): NaN if any element is
    NaN, inf if any is infinite. Not `vector_norm(ord=inf)`, which on a CPU is 28 times slower (6.1 ms
    against 0.22 ms for 2M float32 values at one thread)."""
    if x.numel() == 0:
        return x.new_zeros(())
    low, high = torch.aminmax(x)
    return torch.maximum(high, low.neg())


def _scale(x: Tensor) -> Tensor:
    """The largest magnitude of x, at least the smallest normal number: what values are divided by
    before they are squared."""
    return _peak(x).clamp(min=torch.finfo(x.dtype).tiny)
