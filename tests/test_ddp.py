"""Several processes through Lightning's DDP on the CPU (gloo, loopback only): the same science as one
process, one run folder, one W&B run. Real processes, so these are `slow`."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from template import inits, models
from template.module import Classifier
from tests.helpers.wandb_reader import read_run

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

SYNTHETIC = [
    "data=synthetic",
    "data.synthetic_train_size=384",
    "data.val_size=64",
    "data.synthetic_test_size=64",
    "data.batch_size=32",
    "data.num_workers=0",
    "model.depth=5",
    "model.width=4",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "stats.every_n_steps=2",
]


class ReleaseProcessGroup(L.Callback):
    """ddp_spawn's workers exit as soon as fit returns. A gloo process group still alive at that moment
    sometimes aborted a worker on its way out ("terminate called without an active exception", about
    one run in ten here), so each worker destroys its group when the Trainer tears down."""

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _fit_weights(devices: int, per_device_batch: int) -> dict[str, torch.Tensor]:
    """Three SGD steps on fixed data: the global batch is the same set of samples whether one process
    takes all of it or two processes take half each."""
    L.seed_everything(0, verbose=False)
    model = models.build("plain", depth=4, width=4, num_classes=10)
    inits.initialize(model, "kaiming")
    module = Classifier(
        model,
        num_classes=10,
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": False},
        scheduler={"name": "none", "warmup_epochs": 0},
    )
    generator = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(96, 3, 32, 32, generator=generator), torch.randint(0, 10, (96,)))
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp_spawn" if devices > 1 else "auto",
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ReleaseProcessGroup()],
    )
    # Lightning gives each process a DistributedSampler (seed 0, shuffled); one process with the same
    # sampler over one replica sees the same permutation, so its batch k is the union of theirs.
    sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=0) if devices == 1 else None
    trainer.fit(
        module, DataLoader(data, batch_size=per_device_batch, sampler=sampler, shuffle=sampler is None)
    )
    return {name: value.detach().clone() for name, value in module.model.state_dict().items()}


def test_two_processes_reach_the_weights_of_one_on_the_same_global_batch():
    one = _fit_weights(devices=1, per_device_batch=32)
    two = _fit_weights(devices=2, per_device_batch=16)
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5, msg=name)
    initial = models.build("plain", depth=4, width=4, num_classes=10).state_dict()
    assert not torch.equal(one["conv1.weight"], initial["conv1.weight"])  # training moved them


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env.pop("TEMPLATE_RUN_DIR", None)
    return env


def _only_run(runs: Path) -> Path:
    folders = [path for path in runs.iterdir() if path.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def test_make_train_with_two_cpu_processes(tmp_path):
    args = " ".join([*SYNTHETIC, f"runs_dir={tmp_path / 'runs'}"])
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(REPO),
            "train",
            "INIT=kaiming",
            "DEVICES=2",
            "ACCELERATOR=cpu",
            "STRATEGY=ddp",
            f"ARGS={args}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = _only_run(tmp_path / "runs")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["at_init"]["batch_size"] == 2 * 32  # statistics over the global batch
    assert summary["steps"] == (384 - 64) // (2 * 32)  # each rank takes its shard of the epoch
    assert len(list(run_dir.glob("wandb/offline-run-*"))) == 1
    assert read_run(run_dir).run_id == summary["wandb_run_id"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch000.ckpt", "last.ckpt"]


def test_two_nodes_through_torchrun_share_one_run_folder(tmp_path):
    """Two torchrun invocations, as two nodes would start them, rendezvous on 127.0.0.1."""
    port = _free_port()
    args = [
        *SYNTHETIC,
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.num_nodes=2",
        "trainer.strategy=ddp",
        f"runs_dir={tmp_path / 'runs'}",
    ]
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                f"--node-rank={rank}",
                "--nproc-per-node=1",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                "--rdzv-id=job42",
                "-m",
                "template",
                "train",
                *args,
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(),
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    run_dir = _only_run(tmp_path / "runs")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["at_init"]["batch_size"] == 2 * 32
    assert len(list(run_dir.glob("wandb/offline-run-*"))) == 1
