"""Each sample of the DataLoader path is transformed under its own seed: the pixels are those of
torchvision's transform run right after `torch.manual_seed(sample_seed(seed, epoch, index))` — the
CPU generator is all the transforms draw from — and the caller's random state is left as it was."""

import torch

from template.data import augment
from template.data.resumable_loader import SeededTransforms, sample_seed


def test_pixels_are_the_transform_under_the_samples_seed():
    generator = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (6, 3, 32, 32), generator=generator, dtype=torch.uint8)
    labels = torch.arange(6)
    transform = augment.train_transform((0.5, 0.4, 0.3), (0.2, 0.2, 0.2))
    dataset = SeededTransforms(images, labels, transform, seed=7)
    for epoch, index in [(0, 0), (0, 5), (2, 3)]:
        torch.manual_seed(sample_seed(7, epoch, index))
        expected = transform(images[index])
        image, label = dataset[epoch, index]
        torch.testing.assert_close(image, expected, rtol=0, atol=0)
        assert label == index
    crops = {dataset[epoch, 1][0].sum().item() for epoch in range(8)}
    assert len(crops) > 1  # the epoch changes the draw


def test_callers_random_state_is_untouched():
    dataset = SeededTransforms(
        torch.zeros(2, 3, 32, 32, dtype=torch.uint8),
        torch.arange(2),
        augment.train_transform((0.5,) * 3, (0.2,) * 3),
        seed=0,
    )
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    dataset[0, 1]
    assert torch.equal(torch.rand(3), expected)
