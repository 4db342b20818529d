"""One logging step's statistics on the host: the sums the accumulator (`accumulator.py`, the device
side) gathered over every rank and copied in one transfer, and what the monitor reads from them —
pooled variances, mean squares, the mean cosine between samples, channel moments — in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Column blocks of the sums buffer, one row per layer: activation (count, Σ n·mean, Σ n·var,
# Σ n·mean²), the layer input (count, Σ x²), the gradient w.r.t. the output (as activation), and the
# correlation's (samples, Σ ‖u_i‖²). The row after the layers is the model's input; the last counts samples.
ACT, INPUT, GRAD, CORR = 0, 4, 6, 10
COLUMNS = 12


@dataclass
class Snapshot:
    """One logging step's statistics on the host: sums over all ranks, values from this rank."""

    sums: np.ndarray  # (layers, COLUMNS)
    samples: int  # how many samples the statistics saw, all ranks and micro-batches together
    per_rank: np.ndarray  # (world_size, n): the tensor `snapshot` was given, from each rank
    weight_vars: np.ndarray  # (layers, 2): Var[w], Var[b] of the weights the forward used; NaN if none
    values: list[np.ndarray | None]  # a sample of each layer's outputs, for the histograms
    unit_sums: list[np.ndarray | None]  # Σ u_i per layer, then the model input's
    channels: list[np.ndarray | None]  # (C, 4) per layer: per channel count, Σ n·mean, Σ n·var, Σ n·mean²
    input_shape: tuple[int, ...] | None  # one sample of the model's input

    def variance(self, block: int) -> np.ndarray:
        """Unbiased, like torch.var; NaN where nothing was seen."""
        return _pooled_variance(self.sums[:, block : block + 4])

    def correlation(self) -> np.ndarray:
        """Mean cosine similarity between different samples' outputs, per layer, then the input's."""
        count, norms = self.sums[:, CORR : CORR + 2].T
        # np.square().sum(), not u @ u: a BLAS call wakes OpenBLAS's own threads, which then fight the
        # training threads for the cores (44 ms per logging step on two cores, against 0.1 ms)
        squared = np.array([np.nan if u is None else float(np.square(u).sum()) for u in self.unit_sums])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(count > 1, (squared - norms) / (count * (count - 1)), np.nan)

    def channel_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Per layer: the average over channels of the squared channel mean, and of the channel variance."""
        means, variances = [], []
        for sums in self.channels:
            if sums is None or not (sums[:, 0] > 0).all():
                means.append(np.nan), variances.append(np.nan)
                continue
            means.append(float(np.mean((sums[:, 1] / sums[:, 0]) ** 2)))
            variances.append(float(np.mean(_pooled_variance(sums))))
        return np.array(means), np.array(variances)

    def finite(self, block: int) -> np.ndarray:
        """Per layer, then the model's input: whether the block's sums are finite — false where a value
        of the layer's (or its gradient's) was not: where float32 squares would overflow, the sums run
        over the values divided by their largest magnitude, so finite values near 1e30 are finite here."""
        return np.isfinite(self.sums[:, block : block + 4]).all(1)

    def mean_square(self, block: int) -> np.ndarray:
        count, squares = self.sums[:, block : block + 2].T
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(count > 0, squares / count, np.nan)


def _pooled_variance(sums: np.ndarray) -> np.ndarray:
    count, total, centred, mean_squares = sums.T
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.maximum(centred + mean_squares - total * total / count, 0.0)  # rounding
        return np.where(count > 1, spread / (count - 1), np.nan)


class Slices:
    """Consecutive slices of one flat host array, in the order they were packed."""

    def __init__(self, values: np.ndarray):
        self.values, self.offset = values, 0

    def take(self, count: int) -> np.ndarray:
        piece = self.values[self.offset : self.offset + count]
        self.offset += count
        return piece
