"""LSUV (Mishkin & Matas 2016) must leave every layer's output variance within `tol` of 1 on the
batch it was fitted on, in a deep plain net where orthogonal init alone halves it per ReLU layer."""

import pytest
import torch
from torch import nn

from template import inits
from template.errors import UsageError


def plain_net(depth=20, width=16, norm=False):
    """`depth` weight layers: depth-1 3x3 convs and a Linear classifier, ReLU between."""
    convs = []
    for i in range(depth - 1):
        convs += [nn.Conv2d(3 if i == 0 else width, width, 3, padding=1)]
        convs += [nn.BatchNorm2d(width)] if norm else []
        convs += [nn.ReLU()]
    return nn.Sequential(*convs, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def output_variances(model, batch):
    variances = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, name=name: variances.__setitem__(name, o.var().item()))
        for name, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model(batch)
    for hook in hooks:
        hook.remove()
    return variances


def test_lsuv_reaches_unit_variance_in_every_layer_of_a_20_layer_plain_net():
    torch.manual_seed(0)
    model, batch = plain_net(), torch.randn(16, 3, 8, 8)
    inits.initialize(model, "orthogonal")
    before = output_variances(model, batch)
    assert before["36"] < 1e-3  # without rescaling, the signal fades: ≈ ½ per ReLU layer
    report = inits.initialize(model, "lsuv", batch=batch, tol=0.05)
    after = output_variances(model, batch)
    assert len(after) == 20
    for name, variance in after.items():
        assert abs(variance - 1) < 0.05, name
    assert report.set_by["0.weight"].startswith("lsuv (orthogonal ×")
    assert report.set_by["0.bias"] == "zeros (bias)"
    assert report.untouched == []


def test_lsuv_leaves_training_mode_and_batchnorm_statistics_alone():
    torch.manual_seed(0)
    model = plain_net(depth=6, norm=True)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    inits.initialize(model, "lsuv", batch=torch.randn(16, 3, 8, 8))
    assert all(m.training for m in model.modules())
    assert all(torch.equal(buffers[k], v) for k, v in model.named_buffers())


def test_lsuv_gives_up_after_max_iters_with_a_warning():
    """One rescale is exact up to float rounding (≈ 1e-7), so an absurd tolerance cannot be met."""
    torch.manual_seed(0)
    with pytest.warns(UserWarning) as caught:
        inits.initialize(plain_net(depth=3), "lsuv", batch=torch.randn(8, 3, 8, 8), tol=1e-12, max_iters=1)
    assert [str(w.message).split(" has ")[0] for w in caught] == [
        f"lsuv: layer '{n}'" for n in ("0", "2", "6")
    ]
    assert all("after 1 rescales, off 1 by" in str(w.message) for w in caught)


def test_lsuv_reports_a_layer_the_batch_never_reaches():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.spare = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            return self.used(x)

    torch.manual_seed(0)
    model = Net()
    report = inits.initialize(model, "lsuv", batch=torch.randn(8, 4))
    assert report.set_by["spare.weight"] == "orthogonal (lsuv: not reached by the batch)"


def test_lsuv_refuses_a_layer_whose_output_does_not_vary():
    with pytest.raises(UsageError) as error:
        inits.initialize(plain_net(depth=3), "lsuv", batch=torch.zeros(4, 3, 8, 8))
    assert str(error.value) == "lsuv cannot rescale layer '0': its output variance on the batch is 0.0"
