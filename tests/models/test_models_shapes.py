"""Every model family on data of any shape: the first convolution takes the data's channels, and images
of any height and width (odd, small, not square) reach the classifier with every pixel seen."""

import pytest
import torch
from torch import nn

from template import models

FAMILIES = [("plain", 11), ("vgg", 11), ("vgg", 19), ("resnet", 20), ("resnet", 18), ("vanilla", 6)]
SHAPES = [(1, 16, 16), (1, 28, 28), (3, 32, 32), (3, 20, 24), (2, 7, 9), (1, 3, 3)]


@pytest.mark.parametrize("name, depth", FAMILIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_any_channels_and_size_give_one_logit_per_class(name, depth, shape):
    net = models.build(name, depth=depth, width=16, num_classes=7, in_channels=shape[0])
    first = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == shape[0]
    assert net(torch.randn(2, *shape)).shape == (2, 7)


@pytest.mark.parametrize("name, depth", FAMILIES)
def test_every_pixel_reaches_the_output(name, depth):
    """Rounding-up pools and strides: the gradient of the output reaches every input pixel of a 28×28
    image (a flooring pool would drop the last row and column at 7×7)."""
    net = models.build(name, depth=depth, width=16, in_channels=1).eval()
    inputs = torch.randn(1, 1, 28, 28, requires_grad=True)
    net(inputs).sum().backward()
    assert (inputs.grad != 0).all()
