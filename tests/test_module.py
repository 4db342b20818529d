"""The LightningModule: its learning-rate schedule against the closed form, AdamW's options, the test
step's metrics against a direct computation, and training metrics that reach the logger exactly as if
every step logged them."""

import csv
import math

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from template.module import Classifier

LR, STEPS_PER_EPOCH, EPOCHS, WARMUP_EPOCHS = 0.1, 5, 4, 1
SGD = {"name": "sgd", "lr": LR, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": False}


def loader(n: int = 40, seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    inputs, targets = torch.randn(n, 6, generator=generator), torch.randint(3, (n,), generator=generator)
    return DataLoader(TensorDataset(inputs, targets), batch_size=8)


def trainer(**options) -> L.Trainer:
    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    return L.Trainer(accelerator="cpu", enable_model_summary=False, **{**quiet, **options})


class RecordLr(L.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, *_):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_linear_warm_up_then_cosine_to_zero_per_step():
    torch.manual_seed(0)
    module = Classifier(nn.Linear(6, 3), 3, SGD, {"name": "cosine", "warmup_epochs": WARMUP_EPOCHS})
    record = RecordLr()
    trainer(max_epochs=EPOCHS, callbacks=[record]).fit(module, loader())
    total, warmup = STEPS_PER_EPOCH * EPOCHS, STEPS_PER_EPOCH * WARMUP_EPOCHS
    expected = [LR * (1e-3 + (1 - 1e-3) * step / warmup) for step in range(warmup)] + [
        LR * 0.5 * (1 + math.cos(math.pi * step / (total - warmup))) for step in range(total - warmup)
    ]
    assert record.lrs == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_no_scheduler_keeps_the_rate():
    module = Classifier(nn.Linear(6, 3), 3, SGD, {"name": "none", "warmup_epochs": 0})
    record = RecordLr()
    trainer(max_epochs=2, callbacks=[record]).fit(module, loader())
    assert record.lrs == [LR] * 2 * STEPS_PER_EPOCH


def test_adamw_takes_the_shared_keys_and_ignores_sgd_only_ones():
    module = Classifier(nn.Linear(6, 3), 3, {**SGD, "name": "adamw"}, {"name": "none", "warmup_epochs": 0})
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW)
    assert (optimizer.defaults["lr"], optimizer.defaults["weight_decay"]) == (LR, 5e-4)


def test_test_step_reports_loss_and_accuracy_over_the_whole_split():
    torch.manual_seed(0)
    network = nn.Linear(6, 3)
    module = Classifier(network, 3, SGD, {"name": "none", "warmup_epochs": 0})
    (found,) = trainer().test(module, loader(n=44, seed=1), verbose=False)
    inputs, targets = loader(n=44, seed=1).dataset.tensors
    with torch.no_grad():
        logits = network(inputs)
    # Lightning averages per-batch losses weighted by batch size (the last batch holds 4, not 8).
    assert found["test/loss"] == pytest.approx(nn.functional.cross_entropy(logits, targets).item(), rel=1e-5)
    assert found["test/acc"] == pytest.approx((logits.argmax(1) == targets).float().mean().item(), abs=1e-6)


class LogsEveryStep(Classifier):
    """The reference: `self.log` on every training step, as a LightningModule usually does."""

    def _logger_writes_this_step(self) -> bool:
        return True


def logged_rows(module_class, folder, **options) -> tuple[list[dict], dict]:
    torch.manual_seed(0)
    module = module_class(nn.Linear(6, 3), 3, SGD, {"name": "none", "warmup_epochs": 0})
    run = trainer(logger=CSVLogger(folder), log_every_n_steps=3, **options)
    run.fit(module, loader(n=56))  # 7 steps an epoch: the logger's steps and the epoch ends interleave
    with open(run.logger.log_dir + "/metrics.csv") as file:
        rows = list(csv.DictReader(file))
    return rows, {key: float(value) for key, value in run.callback_metrics.items()}


class StopAtFourthBatch(L.Callback):
    """As a SIGTERM or early stopping does: `should_stop` set during a step that is not a logging one."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if batch_idx == 3:
            trainer.should_stop = True


@pytest.mark.parametrize("stop", ["max_epochs", "max_steps", "should_stop"])  # at steps 14, 11, 4
def test_training_metrics_reach_the_logger_as_if_logged_every_step(tmp_path, stop):
    options = {
        "max_epochs": {"max_epochs": 2},
        "max_steps": {"max_steps": 11},
        "should_stop": {"max_epochs": 2, "callbacks": [StopAtFourthBatch()]},
    }[stop]
    rows, final = logged_rows(Classifier, tmp_path / "ours", **options)
    reference_rows, reference_final = logged_rows(LogsEveryStep, tmp_path / "reference", **options)
    assert rows == reference_rows and len(rows) >= 2
    assert final == reference_final  # the last step's train/loss and train/acc: the summary's "final"


def test_with_logging_off_the_summary_still_gets_the_last_step(tmp_path):
    """`trainer.log_every_n_steps=0` is Lightning's "never write step metrics"; the last step's values
    still reach callback_metrics, which summary.json's "final" reads."""
    finals = []
    for module_class in (Classifier, LogsEveryStep):
        torch.manual_seed(0)
        module = module_class(nn.Linear(6, 3), 3, SGD, {"name": "none", "warmup_epochs": 0})
        run = trainer(log_every_n_steps=0, max_epochs=2)
        run.fit(module, loader(n=56))
        finals.append({key: float(value) for key, value in run.callback_metrics.items()})
    assert finals[0] == finals[1] and set(finals[0]) == {"train/loss", "train/acc"}
