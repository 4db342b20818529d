"""The theory computes its maps on one thread (`propagation._on_one_thread`): small tensors, where a second
thread only waits for a core — seconds per logging step on a 2-core machine shared with other work. It
gives the thread count back afterwards, also when the computation fails."""

import pytest
import torch
from torch import nn

from template.theory import position_maps
from template.theory.propagation import Propagation
from tests.helpers.monitor_nets import PlainCNN


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def _propagation():
    model = PlainCNN(4, 8, "kaiming")
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    return Propagation(model, names), {name: (0.2, 0.0) for name in names}


def test_the_maps_are_computed_on_one_thread(monkeypatch, two_threads):
    seen, conv_sum = [], position_maps.conv_sum

    def watched(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return conv_sum(*args, **kwargs)

    monkeypatch.setattr(position_maps, "conv_sum", watched)
    propagation, variances = _propagation()
    propagation.run((3, 8, 8), 1.0, 0.3, variances, 1.0, batch=8)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2


def test_the_threads_come_back_when_the_computation_fails(monkeypatch, two_threads):
    def broken(*args, **kwargs):
        raise RuntimeError("broken")

    monkeypatch.setattr(position_maps, "conv_sum", broken)
    propagation, variances = _propagation()
    with pytest.raises(RuntimeError, match="broken"):
        propagation.run((3, 8, 8), 1.0, 0.3, variances, 1.0, batch=8)
    assert torch.get_num_threads() == 2
