"""torch.compile: the hooks stay registered and are gated by a Python flag, so a compiled model gets one
graph per state of the monitor (measuring or not) and then never recompiles, however long it trains;
what the hooks measure runs outside the graphs, the one graph break, so it reports what the eager model
reports."""

import re

import pytest
import torch
from torch._dynamo.utils import counters

from template.monitor import VarianceMonitor
from tests.helpers.monitor_nets import Classifier, MemoryLogger, PlainCNN, loader, trainer


def _fit(compiled: bool, steps: int = 9) -> tuple[VarianceMonitor, MemoryLogger]:
    torch.manual_seed(0)
    net = PlainCNN(4, 8, "kaiming")
    monitor, logger = VarianceMonitor(every_n_steps=2), MemoryLogger()
    model = torch.compile(net, backend="aot_eager") if compiled else net
    trainer(steps, logger, [monitor]).fit(Classifier(model), loader(8 * steps, (3, 8, 8), 8))
    return monitor, logger


@pytest.mark.slow
def test_compiled_model_compiles_once_per_flag_state_and_matches_eager():
    torch._dynamo.reset()
    counters.clear()
    _fit(compiled=True, steps=21)
    graphs_in_21_steps = counters["stats"]["unique_graphs"]
    torch._dynamo.reset()
    counters.clear()
    compiled, compiled_logs = _fit(compiled=True)
    assert counters["stats"]["unique_graphs"] == graphs_in_21_steps <= 5
    breaks = {re.search(r"<function (\S+) at ", reason) for reason in counters["graph_break"]}
    measuring = {"Accumulator._measure", "Accumulator._measure_input"}
    assert {found and found.group(1) for found in breaks} == measuring  # the only graph breaks
    eager, eager_logs = _fit(compiled=False)
    assert [layer["name"] for layer in compiled.at_init["layers"]] == [
        "features.0",
        "features.2",
        "features.4",
        "classifier",
    ]
    assert compiled_logs.metrics.keys() == eager_logs.metrics.keys()
    for key, values in eager_logs.metrics.items():
        assert compiled_logs.metrics[key] == pytest.approx(values, rel=1e-4), key
