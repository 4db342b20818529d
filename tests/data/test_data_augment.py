"""The batched crop, flip and normalisation of the on-device loader give exactly torchvision's pixels."""

import itertools

import pytest
import torch
from torchvision.transforms.v2 import functional as F

from template.data import augment

MEAN, STD = (0.49139968, 0.48215841, 0.44653091), (0.24703223, 0.24348513, 0.26158784)


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


def test_draw_covers_every_offset_within_the_padding_and_flips_half():
    offsets, flips = augment.draw(20_000, torch.Generator().manual_seed(0))
    assert offsets.shape == (20_000, 2) and flips.shape == (20_000,) and flips.dtype == torch.bool
    assert set(offsets.unique().tolist()) == set(range(2 * augment.PAD + 1))  # translations -4..4
    assert 0.48 < flips.float().mean().item() < 0.52


def test_crop_is_the_window_of_the_zero_padded_image():
    # distinct values (none zero) so that a window can only match at one offset
    image = (torch.arange(3 * 32 * 32, dtype=torch.int64) + 1).reshape(1, 3, 32, 32)
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    for top, left in itertools.product(range(9), repeat=2):
        out = augment.augment(image, torch.tensor([[top, left]]), torch.tensor([False]))
        assert torch.equal(out[0], padded[0, :, top : top + 32, left : left + 32])
        assert (out[0] == 0).sum() == 3 * (32 * 32 - (32 - abs(top - 4)) * (32 - abs(left - 4)))


def test_flip_mirrors_exactly():
    batch = images(4)
    centre = torch.full((4, 2), augment.PAD)
    assert torch.equal(augment.augment(batch, centre, torch.ones(4, dtype=torch.bool)), batch.flip(-1))
    assert torch.equal(augment.augment(batch, centre, torch.zeros(4, dtype=torch.bool)), batch)


def test_normalisation_is_per_channel_and_exact():
    batch = images(8)
    out = augment.normalize(batch, MEAN, STD)
    expected = (batch.double() / 255 - torch.tensor(MEAN).double()[:, None, None]) / torch.tensor(
        STD
    ).double()[:, None, None]
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected.float(), rtol=0, atol=1e-6)


def test_batched_path_equals_torchvision_functionals_for_the_same_decisions():
    batch = images(64, seed=1)
    offsets, flips = augment.draw(64, torch.Generator().manual_seed(1))
    ours = augment.normalize(augment.augment(batch, offsets, flips), MEAN, STD)
    for image, (top, left), flip, mine in zip(batch, offsets.tolist(), flips.tolist(), ours, strict=True):
        theirs = F.crop(F.pad(image, [augment.PAD]), top, left, 32, 32)
        theirs = F.horizontal_flip(theirs) if flip else theirs
        theirs = F.normalize(F.to_dtype(theirs, torch.float32, scale=True), list(MEAN), list(STD))
        assert torch.equal(mine, theirs)


@pytest.mark.parametrize("seed", range(5))
def test_torchvision_train_transform_output_is_one_of_the_batched_candidates(seed):
    """What the DataLoader path delivers is, pixel for pixel, what `augment` makes for some decision."""
    image = images(1, seed=seed)
    torch.manual_seed(seed)
    delivered = augment.train_transform(MEAN, STD)(image[0])
    decisions = list(itertools.product(range(9), range(9), (False, True)))
    offsets = torch.tensor([[top, left] for top, left, _ in decisions])
    flips = torch.tensor([flip for _, _, flip in decisions])
    candidates = augment.normalize(
        augment.augment(image.expand(len(decisions), -1, -1, -1), offsets, flips), MEAN, STD
    )
    assert sum(torch.equal(delivered, candidate) for candidate in candidates) >= 1


def test_eval_transform_only_normalises():
    batch = images(2)
    assert torch.equal(augment.eval_transform(MEAN, STD)(batch[0]), augment.normalize(batch, MEAN, STD)[0])


@pytest.mark.parametrize("shape, padding", [((1, 28, 28), 3), ((3, 20, 24), 2), ((1, 16, 16), 0)])
def test_any_shape_and_padding_crops_back_to_its_own_size_as_torchvision_does(shape, padding):
    batch = torch.randint(0, 256, (32, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    offsets, flips = augment.draw(32, torch.Generator().manual_seed(2), padding)
    assert offsets.max() <= 2 * padding
    ours = augment.augment(batch, offsets, flips, padding)
    assert ours.shape == batch.shape
    for image, (top, left), flip, mine in zip(batch, offsets.tolist(), flips.tolist(), ours, strict=True):
        theirs = F.crop(F.pad(image, [padding]), top, left, *shape[1:])
        assert torch.equal(mine, F.horizontal_flip(theirs) if flip else theirs)
    delivered = augment.train_transform((0.5,) * shape[0], (0.2,) * shape[0], shape[1:], padding)(batch[0])
    assert delivered.shape == shape


def test_without_flip_nothing_is_mirrored_and_the_crops_are_the_same_draws():
    offsets, flips = augment.draw(1000, torch.Generator().manual_seed(3), flip=False)
    same_offsets, _ = augment.draw(1000, torch.Generator().manual_seed(3), flip=True)
    assert not flips.any() and torch.equal(offsets, same_offsets)
    image = images(1)
    transform = augment.train_transform(MEAN, STD, (32, 32), padding=0, flip=False)
    assert torch.equal(transform(image[0]), augment.normalize(image, MEAN, STD)[0])  # nothing random left
