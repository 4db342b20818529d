"""The theory's conv map (`position_maps.conv_sum`: the sum over each output's taps of the input's map) is
the conv itself applied with a kernel of ones, whatever the kernel, stride, padding, padding mode and
dilation — including the sum-pooling shortcut it takes where pooling can do it; and its backward map
(`conv_transpose_sum`) is that conv's own vector-Jacobian product, for zero padding."""

import pytest
import torch
from torch import nn

from template.theory.position_maps import conv_sum, conv_transpose_sum

CONVS = [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=3, padding=1, stride=2),
    dict(kernel_size=5, padding=2),
    dict(kernel_size=1),
    dict(kernel_size=3, padding="valid"),
    dict(kernel_size=3, padding="same"),
    dict(kernel_size=4, padding="same"),  # uneven pads: one more after than before
    dict(kernel_size=(2, 5), padding="same", dilation=(1, 2)),
    dict(kernel_size=3, stride=3),  # a stride that leaves the last rows and columns unread
    dict(kernel_size=(3, 5), padding=(1, 2)),
    dict(kernel_size=3, padding=3),  # more padding than pooling allows
    dict(kernel_size=3, padding=2, dilation=2),
    dict(kernel_size=3, padding=1, padding_mode="circular"),
    dict(kernel_size=4, stride=2, padding=1),
]


@pytest.mark.parametrize("options", CONVS, ids=[str(options) for options in CONVS])
def test_the_map_is_the_conv_with_a_kernel_of_ones(options):
    conv = nn.Conv2d(1, 1, bias=False, **options).double()
    with torch.no_grad():
        conv.weight.fill_(1.0)
    m = torch.rand(13, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = conv(m[None, None])[0, 0]
    torch.testing.assert_close(conv_sum(m, conv), expected, rtol=1e-12, atol=1e-12)


ZERO_PADDED = [options for options in CONVS if "padding_mode" not in options]  # wrap-around: averaged


@pytest.mark.parametrize("options", ZERO_PADDED, ids=[str(options) for options in ZERO_PADDED])
def test_the_backward_map_is_the_transpose_of_the_conv_with_a_kernel_of_ones(options):
    conv = nn.Conv2d(1, 1, bias=False, **options).double()
    with torch.no_grad():
        conv.weight.fill_(1.0)
    m = torch.rand(
        13, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True
    )
    out = conv(m[None, None])[0, 0]
    g = torch.rand(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (expected,) = torch.autograd.grad(out, m, g)
    torch.testing.assert_close(conv_transpose_sum(g, conv, m.shape), expected, rtol=1e-12, atol=1e-12)
