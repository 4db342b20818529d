"""The synthetic set: a function of the seed, CIFAR-shaped, normalised, and learnable by a CNN but not
by a linear classifier on pixels (the class is in local structure at a random position)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from template import data
from template.data import augment, synthetic


def splits(data_cfg, seed: int, **overrides):
    module = data.build(data_cfg(name="synthetic", **overrides), seed=seed)
    module.prepare_data()  # nothing to fetch
    return module, module.splits()


def test_same_seed_same_data_other_seed_other_data(data_cfg):
    sizes = dict(synthetic_train_size=400, val_size=50, synthetic_test_size=100)
    _, first = splits(data_cfg, 3, **sizes)
    _, again = splits(data_cfg, 3, **sizes)
    _, other = splits(data_cfg, 4, **sizes)
    for split in ("train", "val", "test"):
        assert torch.equal(first[split][0], again[split][0]) and torch.equal(first[split][1], again[split][1])
        assert not torch.equal(first[split][0], other[split][0])
    assert not torch.equal(first["train"][0][:100], first["test"][0])  # distinct draws of one task
    images, labels = synthetic.generate(64, seed=3)
    assert images.shape == (64, 3, 32, 32) and images.dtype == torch.float32
    assert (
        torch.equal(images, synthetic.generate(64, seed=3)[0])
        and labels.bincount().tolist() == [7] * 4 + [6] * 6
    )


@pytest.mark.parametrize(
    "train_size, val_size, sizes",
    [(5000, 5000, [3750, 1250, 1000]), (384, 64, [320, 64, 1000]), (1024, 256, [768, 256, 1000])],
)
def test_validation_is_held_out_of_the_training_images_at_most_a_quarter(
    data_cfg, train_size, val_size, sizes
):
    module, found = splits(data_cfg, 0, synthetic_train_size=train_size, val_size=val_size)
    assert [len(found[split][1]) for split in ("train", "val", "test")] == sizes
    assert found["train"][0].dtype == torch.uint8 and found["train"][0].shape[1:] == (3, 32, 32)
    assert module.num_classes == 10 and module.image_shape == (3, 32, 32)


def test_inputs_are_normalised_per_channel(data_cfg):
    module, _ = splits(data_cfg, 0, synthetic_train_size=2000, val_size=0)
    inputs = module.sample_inputs(2000)
    assert inputs.shape == (2000, 3, 32, 32)
    torch.testing.assert_close(inputs.mean((0, 2, 3)), torch.zeros(3), rtol=0, atol=0.02)
    torch.testing.assert_close(inputs.std((0, 2, 3)), torch.ones(3), rtol=0, atol=0.02)


def test_a_small_cnn_learns_it_and_a_linear_classifier_does_not(data_cfg):
    module, found = splits(data_cfg, 0, synthetic_train_size=1500, val_size=500)
    x, y = augment.normalize(found["train"][0], module.mean, module.std), found["train"][1]
    x_val, y_val = augment.normalize(found["val"][0], module.mean, module.std), found["val"][1]

    # ridge regression from pixels onto one-hot labels, in its dual form (fewer samples than pixels)
    features, targets = x.flatten(1), F.one_hot(y, 10).float()
    dual = torch.linalg.solve(features @ features.T + 100 * torch.eye(len(y)), targets)
    linear_accuracy = ((x_val.flatten(1) @ features.T @ dual).argmax(1) == y_val).float().mean().item()

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        batch = torch.randint(0, len(y), (64,), generator=generator)
        loss = F.cross_entropy(net(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        cnn_accuracy = (net(x_val).argmax(1) == y_val).float().mean().item()
    assert linear_accuracy < 0.4 and cnn_accuracy > 0.9, (linear_accuracy, cnn_accuracy)
