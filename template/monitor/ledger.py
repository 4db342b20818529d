"""What the monitor's hooks find on a logging step, kept as they find it and added into the accumulator's
sums once, at the snapshot, in one batch of tensor operations for every layer and call.

Why: turning one call's moments into sums — a mean, a centred sum of squares, a stack, an indexed
addition — is a dozen tensor operations of a few microseconds each, whatever the tensor's size. Over the
bench's 11 layers, forward and backward, about 100 such operations a layer came to 14 ms of a logging
step at any batch size (measured at 2 samples); batched, the same arithmetic is some 30 operations for
the whole step. On a GPU it is as many fewer kernel launches.

Positions are flat indices into the accumulator's (rows, columns) sums. Moments are about a centre c and
over a scale s (`accumulator._centred_sums`): with d = (x − c)/s, the mean is c + s·Σd/n and the centred
sum of squares s²·(Σd² − (Σd)²/n), in float64, so that a rough centre's own error is recovered.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Moments(NamedTuple):
    """One call's moments about a centre, per channel or of all its values."""

    position: int  # the block's first column (count, then Σ n·mean, Σ n·var, Σ n·mean²)
    centre: Tensor | None  # (entries,) or one value c; None: 0
    scale: Tensor | None  # one value s; None: 1
    shift: Tensor  # (entries,) Σd
    squares: Tensor  # (entries,) Σd²
    count: int  # values per entry
    channels_of: int | None  # the layer whose per-channel sums these are; None: of all the values


class Ledger:
    def __init__(self):
        self.moments: list[Moments] = []
        self.additions: list[tuple[int, Tensor]] = []  # (position, one value to add there)
        self.units: list[tuple[int, Tensor, Tensor]] = []  # (position, samples' norms, their inverses)
        self.counts: dict[int, int] = {}  # position -> a count to add there
        self._layouts: dict[tuple, tuple[Tensor, Tensor, Tensor]] = {}  # `_layout`'s, by layout

    def count(self, position: int, count: int) -> None:
        self.counts[position] = self.counts.get(position, 0) + count

    def settle(self, sums: Tensor, channels: list[Tensor | None]) -> None:
        """Add everything kept into `sums` (flat positions) and each layer's per-channel (C, 4) sums into
        `channels`, then forget it. Σ ‖u_i‖² is each sample's (norm × its float32 inverse)²: 1, or 0 for a
        zero output."""
        moments, additions, units, counts = self.moments, self.additions, self.units, self.counts
        self.moments, self.additions, self.units, self.counts = [], [], [], {}
        if not (moments or additions or units or counts):
            return
        dtype, device = sums.dtype, sums.device
        lengths = [m.shift.numel() for m in moments]
        layout = (
            tuple((m.position, length, m.count) for m, length in zip(moments, lengths, strict=True)),
            tuple(position for position, _ in additions),
            tuple((position, norms.numel()) for position, norms, _ in units),
            tuple(counts.items()),
        )
        index, n, constants = self._layout(layout, dtype, device)
        values = [constants]
        if moments:
            zero, one = torch.zeros(1, dtype=dtype, device=device), torch.ones(1, dtype=dtype, device=device)
            centre = _column([m.centre for m in moments], lengths, zero).to(dtype)
            scale = _column([m.scale for m in moments], lengths, one).to(dtype)
            shift = _column([m.shift for m in moments], lengths).to(dtype)
            squares = _column([m.squares for m in moments], lengths).to(dtype)
            mean = centre + scale * shift / n
            spread = (squares - shift * shift / n).clamp(min=0) * scale * scale
            entries = torch.stack((n, mean * n, spread, mean * mean * n), dim=1)  # (entries, 4)
            values.append(entries.flatten())
            for m, per_channel in zip(moments, entries.split(lengths), strict=True):
                if m.channels_of is not None:
                    previous = channels[m.channels_of]
                    same = previous is not None and previous.shape == per_channel.shape
                    channels[m.channels_of] = previous + per_channel if same else per_channel
        if additions:
            values.append(torch.stack([value.reshape(()) for _, value in additions]).to(dtype))
        if units:
            norms = torch.cat([n for _, n, _ in units]).to(dtype)
            inverse = torch.cat([i for _, _, i in units]).to(dtype)
            values.append((norms * inverse).square())
        sums.view(-1).index_add_(0, index, torch.cat(values))

    def _layout(self, layout: tuple, dtype, device) -> tuple[Tensor, Tensor, Tensor]:
        """Each value's flat position (the counts, the moments' 4 columns per entry, the additions, the
        samples' unit norms), each moment entry's count, and the counts, as tensors. Made once per layout —
        the same at every logging step of a run, but for a last, smaller batch — so that on a GPU no index
        is copied to the device after the first."""
        if layout not in self._layouts:
            moments, additions, units, counts = layout
            index = [position for position, _ in counts]
            index += [p + column for p, length, _ in moments for _ in range(length) for column in range(4)]
            index += list(additions) + [p for p, samples in units for _ in range(samples)]
            if len(self._layouts) > 8:  # a run has one or two; a fork may vary its batches
                self._layouts.clear()
            self._layouts[layout] = (
                torch.tensor(index, dtype=torch.long, device=device),
                torch.tensor(
                    [n for _, length, n in moments for _ in range(length)], dtype=dtype, device=device
                ),
                torch.tensor([value for _, value in counts], dtype=dtype, device=device),
            )
        return self._layouts[layout]


def _column(tensors: list[Tensor | None], lengths: list[int], default: Tensor | None = None) -> Tensor:
    """(entries,): each call's values, one value repeated over its entries, or `default` where None."""
    pieces = zip(tensors, lengths, strict=True)
    return torch.cat([(default if t is None else t).reshape(-1).expand(k) for t, k in pieces])
