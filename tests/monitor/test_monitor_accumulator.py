"""The monitor's sums on a CIFAR-sized layer (2M values) read as float64 statistics of the same values:
with the channels' means comparable to their spread, with means a thousand times the spread (where the
pooled variance subtracts squared means), with inputs and outputs near 1e20, whose squares overflow
float32, and near 1e-25, whose squares vanish in it; each both as a CPU takes it (the values as they
are where that can be trusted) and as other devices do (always over their largest magnitude); with
one sample's output all zero; with a channels_last output; and with gradients whose squared mean lies
either side of the point where the CPU's uncentred sums (`rows.py`) give way to centred ones.

A float32 reduction that accumulates carelessly is off by 1e-4 at this size (torch.linalg.vector_norm on
a CPU: 1e-4 over the whole tensor, 7e-4 per channel); torch's sum is off by about 1e-7. The tolerance,
1e-6, sits between the two; relative only (pytest.approx's default absolute 1e-12 would pass anything
near 1e-25)."""

import pytest
import torch
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import nn

from template.monitor import rows
from template.monitor.accumulator import Accumulator
from template.monitor.snapshot import ACT, GRAD, INPUT

TOLERANCE = 1e-6


LAYERS = {  # name: (scale of the inputs and the bias, bias offset)
    "mean comparable to spread": (1.0, 0.0),
    "mean a thousand spreads": (1.0, 1000.0),
    "values near 1e20": (1e20, 0.0),
    "values near 1e-25": (1e-25, 0.0),
}
# On a CPU the sums are taken of the values as they are where float32 squares can be trusted, and of the
# values over their largest magnitude elsewhere (near 1e20 or 1e-25 here); on other devices always the
# latter, which "scaled" takes on every layer.
PATHS = ("as on a CPU", "scaled")


@pytest.fixture(scope="module", params=[(layer, path) for path in PATHS for layer in LAYERS], ids=str)
def measured(request):
    (scale, offset), path = LAYERS[request.param[0]], request.param[1]
    return _measure(scale, offset, host_reads=path != "scaled")


def _measure(scale: float, offset: float, host_reads: bool, channels_last: bool = False, grad=None):
    """The accumulator's snapshot of one conv's output, input and gradient — the output itself, or
    `grad` — with those tensors in float64."""
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1)
    with torch.no_grad():
        conv.bias.mul_(scale).add_(offset)
    inputs = ((torch.randn(128, 16, 32, 32).relu() * 3 + 1) * scale).requires_grad_()
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        inputs = inputs.detach().to(memory_format=torch.channels_last).requires_grad_()
    accumulator = Accumulator([conv], torch.device("cpu"), host_reads=host_reads)
    accumulator.armed = True
    output = conv(inputs)
    assert output.is_contiguous(memory_format=torch.channels_last) == channels_last
    output.retain_grad()
    if grad is None:
        (output.square().sum() / 2).backward()  # d(loss)/d(output) = output
    else:
        (output * grad).sum().backward()
    strategy = SingleDeviceStrategy(torch.device("cpu"))
    snapshot = accumulator.snapshot(strategy, 1, with_values=False, per_rank=torch.zeros(1))
    return snapshot, inputs.detach().double(), output.detach().double(), output.grad.double()


def test_activation_and_gradient_variances_are_those_of_float64(measured):
    snapshot, _, output, grad = measured
    assert snapshot.variance(ACT)[0] == pytest.approx(output.var().item(), rel=TOLERANCE, abs=0)
    assert snapshot.variance(GRAD)[0] == pytest.approx(grad.var().item(), rel=TOLERANCE, abs=0)


def test_the_input_mean_square_is_that_of_float64(measured):
    snapshot, inputs, _, _ = measured
    assert snapshot.mean_square(INPUT)[0] == pytest.approx(
        inputs.square().mean().item(), rel=TOLERANCE, abs=0
    )


def test_channel_moments_are_those_of_float64(measured):
    snapshot, _, output, _ = measured
    means, variances = snapshot.channel_moments()
    dims = [0, 2, 3]
    assert means[0] == pytest.approx(output.mean(dim=dims).square().mean().item(), rel=TOLERANCE, abs=0)
    assert variances[0] == pytest.approx(output.var(dim=dims).mean().item(), rel=TOLERANCE, abs=0)


def test_the_mean_cosine_between_samples_is_that_of_float64(measured):
    snapshot, _, output, _ = measured
    units = _unit_vectors(output)
    batch = units.shape[0]
    expected = (units.sum(0).square().sum() - batch) / (batch * (batch - 1))
    assert snapshot.correlation()[0] == pytest.approx(expected.item(), abs=TOLERANCE)


def _unit_vectors(output: torch.Tensor) -> torch.Tensor:
    """Each sample's output over its norm, in float64; a zero output stays zero. Not
    `nn.functional.normalize`, whose floor of 1e-12 on the norm shrinks outputs near 1e-25 to nothing."""
    flat = output.flatten(1)
    norms = flat.norm(dim=1, keepdim=True)
    return torch.where(norms > 0, flat / norms, 0.0)


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
    units = _unit_vectors(output.double())
    batch = units.shape[0]
    expected = (units.sum(0).square().sum() - (batch - 1)) / (batch * (batch - 1))
    assert snapshot.correlation()[0] == pytest.approx(expected.item(), abs=TOLERANCE)


def test_two_micro_batches_pool_to_the_statistics_of_both():
    """Under gradient accumulation a layer is called once per micro-batch, each centred on its own rough
    mean (taken over 16 of its samples): the pooled variances must be those of all the values, which
    needs each call's exact mean, not its rough one. The two halves' means differ."""
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1)
    accumulator = Accumulator([conv], torch.device("cpu"))
    accumulator.armed = True
    outputs, grads = [], []
    for shift in (0.0, 5.0):
        output = conv(torch.randn(64, 16, 16, 16) + shift)
        output.retain_grad()
        (output.square().sum() / 2).backward()  # d(loss)/d(output) = output
        outputs.append(output.detach().double()), grads.append(output.grad.double())
    strategy = SingleDeviceStrategy(torch.device("cpu"))
    snapshot = accumulator.snapshot(strategy, 1, with_values=False, per_rank=torch.zeros(1))
    assert snapshot.variance(ACT)[0] == pytest.approx(torch.cat(outputs).var().item(), rel=TOLERANCE, abs=0)
    assert snapshot.variance(GRAD)[0] == pytest.approx(torch.cat(grads).var().item(), rel=TOLERANCE, abs=0)


@pytest.mark.parametrize("host_reads", [True, False], ids=["as on a CPU", "scaled"])
def test_each_logging_step_reads_its_own_batch_whatever_its_size(host_reads):
    """The sums are settled at each snapshot from index tensors kept per layout of the calls
    (`Accumulator._layout`); a last, smaller batch has another layout, and a third snapshot of the first
    size reuses the first's. Every snapshot holds only its own step's values, and its sample count."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, 3, padding=1)
    accumulator = Accumulator([conv], torch.device("cpu"), host_reads=host_reads)
    strategy = SingleDeviceStrategy(torch.device("cpu"))
    for batch, shift in ((16, 0.0), (5, 3.0), (16, -2.0)):
        accumulator.armed = True
        accumulator.count_samples(batch)
        output = conv(torch.randn(batch, 4, 8, 8) + shift)
        output.retain_grad()
        (output.square().sum() / 2).backward()  # d(loss)/d(output) = output
        snapshot = accumulator.snapshot(strategy, 1, with_values=False, per_rank=torch.zeros(1))
        expected = output.detach().double()
        assert snapshot.samples == batch
        assert snapshot.variance(ACT)[0] == pytest.approx(expected.var().item(), rel=TOLERANCE, abs=0)
        assert snapshot.variance(GRAD)[0] == pytest.approx(output.grad.double().var().item(), rel=TOLERANCE)
        means, _ = snapshot.channel_moments()
        assert means[0] == pytest.approx(expected.mean(dim=(0, 2, 3)).square().mean().item(), rel=TOLERANCE)


def test_a_channels_last_output_is_summed_as_it_lies():
    """`rows.sums` needs rows in memory order; a channels_last output (no such rows) takes the centred
    path on a CPU, with the same float64 results."""
    snapshot, inputs, output, grad = _measure(1.0, 0.0, host_reads=True, channels_last=True)
    means, variances = snapshot.channel_moments()
    assert snapshot.variance(ACT)[0] == pytest.approx(output.var().item(), rel=TOLERANCE, abs=0)
    assert snapshot.variance(GRAD)[0] == pytest.approx(grad.var().item(), rel=TOLERANCE, abs=0)
    assert snapshot.mean_square(INPUT)[0] == pytest.approx(
        inputs.square().mean().item(), rel=TOLERANCE, abs=0
    )
    assert variances[0] == pytest.approx(output.var(dim=[0, 2, 3]).mean().item(), rel=TOLERANCE, abs=0)


@pytest.mark.parametrize("ratio", [0.9 * rows.CENTRE_ABOVE, 1.1 * rows.CENTRE_ABOVE, 1e6])
def test_a_gradients_variance_either_side_of_centring(ratio):
    """On a CPU a gradient is summed uncentred where its squared mean is at most `rows.CENTRE_ABOVE`
    times its variance, and centred beyond: the variance is float64's on both sides of that line and
    far past it (a mean a thousand spreads)."""
    torch.manual_seed(1)
    grad = torch.randn(128, 16, 32, 32) + ratio**0.5
    snapshot, _, _, measured_grad = _measure(1.0, 0.0, host_reads=True, grad=grad)
    assert measured_grad.mean() ** 2 / measured_grad.var() == pytest.approx(ratio, rel=0.02)
    assert snapshot.variance(GRAD)[0] == pytest.approx(measured_grad.var().item(), rel=TOLERANCE, abs=0)


def test_long_rows_are_cut_where_a_float32_norm_loses_digits():
    """A float32 norm over 200K values is off by about 3e-6 of float64's (1e-6 at 50K): `rows.sums` cuts
    each (sample, channel) into rows of at most `rows.ROW` values, whose Σx² add in float64."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 200 * 1024) * 0.7 + 0.05
    total, squares = rows.sums(x)
    assert torch.allclose(total, x.double().sum(2), rtol=TOLERANCE, atol=0)
    assert torch.allclose(squares, x.double().square().sum(2), rtol=TOLERANCE, atol=0)


@pytest.mark.parametrize(
    ("positions", "length"), [(1024, 1024), (49, 49), (50176, 1024), (3000, 1000), (1031, None)]
)
def test_the_row_length_divides_the_positions(positions, length):
    """The longest divisor up to 1024; none for a prime past it (the caller centres instead)."""
    assert rows.row_length(positions) == length
