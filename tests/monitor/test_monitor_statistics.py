"""The monitor's numbers against independent computations: torch.var over the concatenated batch,
He's one-layer relation within a tolerance derived from the width, and the chained closed form."""

import copy
import math
from functools import partial

import numpy as np
import pytest
import torch
from lightning.pytorch.plugins import MixedPrecision
from torch import nn

from template.monitor import VarianceMonitor
from tests.helpers.monitor_nets import Classifier, MemoryLogger, PlainCNN, loader, plain_mlp, trainer


def _reference(model: nn.Module, names: list[str], x: torch.Tensor, y: torch.Tensor):
    """Activations, inputs and output gradients of `names` on one forward/backward of the whole batch."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False  # so every captured output is the value the gradient refers to
    modules = dict(model.named_modules())
    outputs, inputs = {}, {}

    def capture(name, module, args, output):
        outputs[name], inputs[name] = output, args[0]

    handles = [modules[name].register_forward_hook(partial(capture, name)) for name in names]
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, [outputs[name] for name in names])
    for handle in handles:
        handle.remove()
    return outputs, inputs, dict(zip(names, grads, strict=True)), modules


def test_variance_equals_torch_var_over_the_concatenated_batch():
    """Two accumulated micro-batches of 16 make step 0; the monitor must report the statistics of all 32."""
    torch.manual_seed(0)
    module = Classifier(PlainCNN(depth=5, width=8, scheme="pytorch_default"))
    initial = copy.deepcopy(module.model)
    data = loader(32, (3, 8, 8), batch_size=16)
    monitor = VarianceMonitor(every_n_steps=100)
    trainer(1, callbacks=[monitor], accumulate_grad_batches=2).fit(module, data)

    x, y = data.dataset.tensors
    names = [layer["name"] for layer in monitor.at_init["layers"]]
    assert names == ["features.0", "features.2", "features.4", "features.6", "classifier"]
    outputs, inputs, grads, modules = _reference(initial, names, x, y)
    assert monitor.at_init["batch_size"] == 32
    for layer in monitor.at_init["layers"]:
        name, weight, bias = layer["name"], modules[layer["name"]].weight, modules[layer["name"]].bias
        assert layer["act_var"] == pytest.approx(torch.var(outputs[name]).item(), rel=1e-5)
        assert layer["grad_var"] == pytest.approx(torch.var(grads[name]).item(), rel=1e-5)
        fan_in = weight[0].numel()
        assert (layer["fan_in"], layer["fan_out"]) == (fan_in, weight.shape[0] * weight[0, 0].numel())
        expected = fan_in * weight.var(correction=0) * inputs[name].pow(2).mean() + bias.var(correction=0)
        assert layer["act_var_predicted"] == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("scheme", ["kaiming", "glorot", "pytorch_default"])
def test_predicted_matches_measured_within_the_width_tolerance(scheme):
    """He's relation n Var[w] E[x²] + Var[b], fed the measured input, against the measured variance.

    Conditional on the layer's input second-moment matrix M, the measured variance is the average over
    the C output units of w_j^T M w_j, with mean Var[w] tr(M) (the prediction) and relative standard
    deviation sqrt(2 tr(M²)/C)/tr(M). That is at most sqrt(2/C) (M of rank one, which deep ReLU nets
    approach as inputs align) and, for the first layer fed iid inputs of dimension n from a batch of B,
    about sqrt(2 (1/n + 1/B) / C). Per layer we allow 4 standard deviations; the mean over the hidden
    layers must sit within 4 standard errors of 1, which catches any systematic error (a factor of 2,
    a missing bias term, E[x] for E[x²]) that one layer's noise could hide.
    """
    torch.manual_seed(1)
    width, batch, depth = 256, 128, 12
    module = Classifier(plain_mlp(depth, width, scheme))
    monitor = VarianceMonitor(every_n_steps=100)
    trainer(1, callbacks=[monitor]).fit(module, loader(batch, (width,), batch))

    layers = monitor.at_init["layers"][:-1]  # the classifier has only 10 outputs
    ratios = np.array([layer["act_var"] / layer["act_var_predicted"] for layer in layers])
    assert abs(ratios[0] - 1) < 4 * math.sqrt(2 * (1 / width + 1 / batch) / width)
    assert np.all(np.abs(ratios - 1) < 4 * math.sqrt(2 / width)), ratios
    assert abs(ratios.mean() - 1) < 4 * math.sqrt(2 / width) / math.sqrt(len(ratios)), ratios


def test_theory_is_the_closed_form_product_on_a_net_without_pooling():
    """Var[y_l] = n_1 Var[w_1] E[x²] * prod_{k=2..l} (1/2 n_k Var[w_k]) with zero biases, at step 0 and
    after the weights have moved (the theory follows the current weights)."""
    torch.manual_seed(2)
    model = plain_mlp(depth=6, width=64, scheme="kaiming", inputs=32)
    for layer in model[::2]:
        nn.init.normal_(layer.weight, std=layer.weight.std().item() * (1 + 0.3 * torch.rand(()).item()))
    data = loader(64, (32,), batch_size=32)
    logger, monitor = MemoryLogger(), VarianceMonitor(every_n_steps=1)
    snapshots = {}

    class Remember(VarianceMonitor.__mro__[1]):  # a lightning Callback: weights as seen by each step
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            snapshots[trainer.global_step] = (copy.deepcopy(model), batch[0].clone())

    trainer(2, logger, [Remember(), monitor]).fit(Classifier(model), data)
    for step in (0, 1):
        net, x = snapshots[step]
        variance = x.pow(2).mean().item()
        expected = {}
        for i, layer in enumerate(net[::2]):
            gain = 1 if i == 0 else 0.5
            variance *= gain * layer.weight[0].numel() * layer.weight.var(correction=0).item()
            expected[str(2 * i)] = variance
        assert logger.at("act_var_theory", step) == pytest.approx(expected, rel=1e-5)


def test_gradients_are_unscaled_under_16_mixed_precision():
    """16-mixed multiplies the loss by GradScaler's scale (65536 at first) before backward; the
    reported gradient variance must be that of the true loss."""
    at_init = {}
    for precision in ("32-true", "16-mixed"):
        torch.manual_seed(0)
        monitor = VarianceMonitor(every_n_steps=100)
        plugin = {"plugins": [MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu"))]}
        trainer(1, callbacks=[monitor], **(plugin if precision == "16-mixed" else {})).fit(
            Classifier(PlainCNN(4, 8, "kaiming")), loader(16, (3, 8, 8), 16)
        )
        at_init[precision] = {layer["name"]: layer["grad_var"] for layer in monitor.at_init["layers"]}
    assert at_init["16-mixed"] == pytest.approx(at_init["32-true"], rel=0.05)
