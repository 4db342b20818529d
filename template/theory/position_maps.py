"""What a layer does to a map over positions, with no weights in it: the sums a conv's taps and its
transpose take (zero padding, stride, dilation), the windows a pool averages, and the distinct values of
maps (`propagation` evaluates the mean-field moments once per distinct value, not per position).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, tuple | list) else (value, value)


def conv_sum(m: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """Σ over the kernel's taps of m at the positions each output reads, zero outside the map: the
    conv itself applied to the map with a kernel of ones (other padding modes pad the map the same way).
    Without dilation that is a sum pooling, which on a CPU is 12 times faster than a float64 conv
    (0.04 against 0.55 ms on a 32×32 map): the monitor does this twice per conv per logging step."""
    x = m[None, None]  # (1, 1, H, W)
    padding = conv.padding
    if conv.padding_mode != "zeros" or padding == "same":
        pads = conv._reversed_padding_repeated_twice
        x = F.pad(x, pads, mode=conv.padding_mode if conv.padding_mode != "zeros" else "constant")
        padding = (0, 0)
    padding = (0, 0) if padding == "valid" else padding
    k = conv.kernel_size
    if conv.dilation == (1, 1) and all(2 * p <= size for p, size in zip(padding, k, strict=True)):
        out = F.avg_pool2d(x, k, conv.stride, padding, count_include_pad=True, divisor_override=1)
    else:  # avg_pool2d takes neither dilation nor padding over half the kernel
        ones = torch.ones(1, 1, *k, dtype=m.dtype)
        out = F.conv2d(x, ones, stride=conv.stride, padding=padding, dilation=conv.dilation)
    return out[0, 0]


def conv_transpose_sum(g: torch.Tensor, conv: nn.Conv2d, input_shape) -> torch.Tensor:
    """Σ over the outputs that read each input position of their gradient's second moment: the conv's
    transpose on the map. Taken over the zero-padded input the conv reads — the transpose without
    padding, its rows and columns past the last window (a stride that does not divide) zero — and cut
    back by the conv's own pads, which 'same' makes uneven for an even kernel. With stride and dilation 1
    the transpose of a kernel of ones is a sum over the same window, a sum pooling of the map padded by
    k − 1: 0.04 ms on a 32×32 map against 0.3 for a float64 transpose."""
    k = conv.kernel_size
    if conv.padding_mode != "zeros":  # wrap-around: each input feeds k²·(outputs / inputs) outputs on average
        fed = math.prod(k) * g.numel() / math.prod(input_shape)
        return torch.full(tuple(input_shape), float(g.mean()) * fed, dtype=g.dtype)
    if conv.stride == (1, 1) and conv.dilation == (1, 1):
        grown = F.pad(g[None, None], (k[1] - 1, k[1] - 1, k[0] - 1, k[0] - 1))
        full = F.avg_pool2d(grown, k, 1, divisor_override=1)[0, 0]
    else:
        ones = torch.ones(1, 1, *k, dtype=g.dtype)
        full = F.conv_transpose2d(g[None, None], ones, stride=conv.stride, dilation=conv.dilation)[0, 0]
    left, right, top, bottom = conv._reversed_padding_repeated_twice
    height, width = input_shape
    padded = torch.zeros(height + top + bottom, width + left + right, dtype=g.dtype)
    padded[: full.shape[0], : full.shape[1]] = full  # (padded input), what no window reads stays 0
    return padded[top : top + height, left : left + width]


def window_mean(m: torch.Tensor, pool: nn.Module) -> torch.Tensor:
    """The mean over each window the pool reads, with its kernel, stride, padding and ceil mode."""
    k, stride = pair(pool.kernel_size), pair(pool.stride or pool.kernel_size)
    windows = dict(count_include_pad=False, ceil_mode=pool.ceil_mode)
    return F.avg_pool2d(m[None, None], k, stride, pair(pool.padding), **windows)[0, 0]


def distinct(*maps: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The distinct values of the maps taken together, rounded to eight significant digits, and each
    position's index among them, in the order of the first map's values, then the second's, ...

    One sort per map and one of the combined ranks, not `torch.unique(dim=1)` over the stacked maps,
    whose lexicographic sort of columns took three times as long (0.66 against 0.2 ms for three 32×32
    maps on one CPU thread; the theory asks for about 30 per logging step)."""
    rounded, key = [], None
    for values in maps:
        values = torch.nan_to_num(values.flatten(), nan=0.0)
        scale = 10 ** (torch.floor(torch.log10(values.abs().clamp(min=1e-300))) - 7)
        values = torch.round(values / scale) * scale
        levels, rank = torch.unique(values, return_inverse=True)  # sorted, so ranks keep the order
        key = rank if key is None else key * len(levels) + rank
        rounded.append(values)
    first, inverse = _first_of_each(key)
    return [values[first] for values in rounded], inverse


def _first_of_each(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each distinct value of `key`, in increasing order, the first position holding it; and each
    position's index among them."""
    _, inverse = torch.unique(key, return_inverse=True)
    positions = torch.arange(key.numel())
    first = torch.full((int(inverse.max()) + 1,), key.numel()).scatter_reduce(0, inverse, positions, "amin")
    return first, inverse
