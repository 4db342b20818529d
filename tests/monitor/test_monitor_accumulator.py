"""The monitor's sums on a CIFAR-sized layer (2M values) read as float64 statistics of the same values:
with the channels' means comparable to their spread, with means a thousand times the spread (where the
pooled variance subtracts squared means), and with values near 1e20, whose squares overflow float32 (the
samples' norms then come from the sums over scaled values); and with one sample's output all zero.

A float32 reduction that accumulates carelessly is off by 1e-4 at this size (torch.linalg.vector_norm on
a CPU: 1e-4 over the whole tensor, 7e-4 per channel); torch's sum is off by about 1e-7. The tolerance,
1e-6, sits between the two."""

import pytest
import torch
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import nn

from template.monitor.accumulator import ACT, GRAD, INPUT, Accumulator

TOLERANCE = 1e-6


LAYERS = {  # name: (weight and bias scale, bias offset)
    "mean comparable to spread": (1.0, 0.0),
    "mean a thousand spreads": (1.0, 1000.0),
    "values near 1e20": (1e20, 0.0),
}


@pytest.fixture(scope="module", params=LAYERS)
def measured(request):
    scale, offset = LAYERS[request.param]
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1)
    with torch.no_grad():
        conv.weight.mul_(scale)
        conv.bias.mul_(scale).add_(offset)
    inputs = (torch.randn(128, 16, 32, 32).relu() * 3 + 1).requires_grad_()
    accumulator = Accumulator([conv], torch.device("cpu"))
    accumulator.armed = True
    output = conv(inputs)
    output.retain_grad()
    (output.square().sum() / 2).backward()  # d(loss)/d(output) = output
    strategy = SingleDeviceStrategy(torch.device("cpu"))
    snapshot = accumulator.snapshot(strategy, 1, with_values=False, per_rank=torch.zeros(1))
    return snapshot, inputs.detach().double(), output.detach().double(), output.grad.double()


def test_activation_and_gradient_variances_are_those_of_float64(measured):
    snapshot, _, output, grad = measured
    assert snapshot.variance(ACT)[0] == pytest.approx(output.var().item(), rel=TOLERANCE)
    assert snapshot.variance(GRAD)[0] == pytest.approx(grad.var().item(), rel=TOLERANCE)


def test_the_input_mean_square_is_that_of_float64(measured):
    snapshot, inputs, _, _ = measured
    assert snapshot.mean_square(INPUT)[0] == pytest.approx(inputs.square().mean().item(), rel=TOLERANCE)


def test_channel_moments_are_those_of_float64(measured):
    snapshot, _, output, _ = measured
    means, variances = snapshot.channel_moments()
    dims = [0, 2, 3]
    assert means[0] == pytest.approx(output.mean(dim=dims).square().mean().item(), rel=TOLERANCE)
    assert variances[0] == pytest.approx(output.var(dim=dims).mean().item(), rel=TOLERANCE)


def test_the_mean_cosine_between_samples_is_that_of_float64(measured):
    snapshot, _, output, _ = measured
    units = nn.functional.normalize(output.flatten(1), dim=1)
    batch = units.shape[0]
    expected = (units.sum(0).square().sum() - batch) / (batch * (batch - 1))
    assert snapshot.correlation()[0] == pytest.approx(expected.item(), abs=TOLERANCE)


def test_a_sample_whose_output_is_all_zero_is_a_zero_vector_in_the_mean_cosine():
    """Its unit vector is zero and it adds nothing to Σ‖u_i‖², so the mean cosine over the pairs of the
    batch counts its pairs as 0 — as the float64 reference, with `normalize`'s zero for a zero vector."""
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1, bias=False)
    inputs = torch.randn(32, 16, 8, 8)
    inputs[5] = 0.0
    accumulator = Accumulator([conv], torch.device("cpu"))
    accumulator.armed = True
    with torch.no_grad():
        output = conv(inputs)
    strategy = SingleDeviceStrategy(torch.device("cpu"))
    snapshot = accumulator.snapshot(strategy, 1, with_values=False, per_rank=torch.zeros(1))
    units = nn.functional.normalize(output.double().flatten(1), dim=1)
    batch = units.shape[0]
    expected = (units.sum(0).square().sum() - (batch - 1)) / (batch * (batch - 1))
    assert snapshot.correlation()[0] == pytest.approx(expected.item(), abs=TOLERANCE)
