"""`position_maps.distinct`, the positions of a map that the theory evaluates once: its classes are the
distinct columns of the maps stacked and rounded to eight digits, in the order `torch.unique(dim=1)` sorts
them — what it computed before it sorted each map on its own."""

import pytest
import torch
import torch.nn.functional as F

from template.theory.position_maps import distinct


def _reference(*maps):
    rounded = []
    for values in maps:
        values = torch.nan_to_num(values.flatten(), nan=0.0)
        scale = 10 ** (torch.floor(torch.log10(values.abs().clamp(min=1e-300))) - 7)
        rounded.append(torch.round(values / scale) * scale)
    values, inverse = torch.unique(torch.stack(rounded), dim=1, return_inverse=True)
    return list(values), inverse


def _border(layers: int) -> torch.Tensor:
    """A 16×16 map after `layers` zero-padded 3×3 sums: one value inside, many along the border."""
    m = torch.ones(16, 16, dtype=torch.float64)
    for _ in range(layers):
        m = F.avg_pool2d(m[None, None], 3, 1, 1, count_include_pad=True, divisor_override=1)[0, 0] / 9
    return m


generator = torch.Generator().manual_seed(0)
MAPS = {
    "one map": (_border(3),),
    "three maps": (_border(2), _border(2) * 0.3 + 1e-9, torch.full((16, 16), 0.01, dtype=torch.float64)),
    "ties in one map only": (_border(1), (_border(1) * 7).round()),
    "small integers": tuple(torch.randint(0, 3, (9, 9), generator=generator).double() for _ in range(3)),
    "equal to eight digits": (torch.tensor([[1.0, 1.0 + 1e-12], [2.0, 2.0 + 1e-6]], dtype=torch.float64),),
    "NaN and signs": (torch.tensor([[float("nan"), 1.0], [0.0, -1.0]], dtype=torch.float64),),
    "one position": (torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)),
}


@pytest.mark.parametrize("maps", MAPS.values(), ids=MAPS)
def test_the_classes_are_the_distinct_rounded_columns(maps):
    values, inverse = distinct(*maps)
    expected_values, expected_inverse = _reference(*maps)
    assert torch.equal(inverse, expected_inverse)
    assert all(torch.equal(a, b) for a, b in zip(values, expected_values, strict=True))
