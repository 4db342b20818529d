"""A resumed run keeps what the monitor saw before: the step-0 statistics (summary.json's `at_init`)
and the history behind the heatmap travel in Lightning's checkpoint, as plain data (weights_only)."""

import torch

from template.monitor import VarianceMonitor
from tests.helpers.monitor_nets import Classifier, PlainCNN, loader, trainer


def test_at_init_and_history_survive_a_resume(tmp_path):
    torch.manual_seed(0)
    module = Classifier(PlainCNN(4, 8, "glorot"))
    data = loader(64, (3, 8, 8), 8)
    first = VarianceMonitor(every_n_steps=2, vanish_factor=0.5)
    run = trainer(4, callbacks=[first])
    run.fit(module, data)
    run.save_checkpoint(tmp_path / "last.ckpt")

    resumed = VarianceMonitor(every_n_steps=2, vanish_factor=0.5, plots_dir=tmp_path / "plots")
    trainer(6, callbacks=[resumed]).fit(module, data, ckpt_path=tmp_path / "last.ckpt", weights_only=True)
    assert resumed.at_init == first.at_init and resumed.at_init["first_failure"] is not None
    assert [step for step, _ in resumed.history] == [0, 2, 4]
    assert (tmp_path / "plots" / "variance_heatmap.png").exists()
