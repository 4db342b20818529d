"""The GPU section (ResNet-18 in bf16: images/s and MFU) cannot run without a GPU, so its wiring is run
here on the CPU, tiny, with the device name faked: the same Setup, both loops under bf16 autocast, and
MFU computed from the counted FLOPs and the table's peak."""

import pytest
import torch

from template.bench import measure


def test_gpu_plan_runs_both_loops_and_computes_mfu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    keys = ["trainer.accelerator=cpu", "bench.steps=1", "bench.warmup=0", "logger=none"]
    records = measure.gpu_plan(keys, 2, torch.device("cpu"), tmp_path)(0)
    assert set(records) == {"resnet18_bf16_plain", "resnet18_bf16_template"}
    for name, record in records.items():
        assert record["images"] == 2, name
        assert record["flops_per_image"] == pytest.approx(3.33e9, rel=0.01)  # ResNet-18, 64 channels
        assert record["peak_tflops"] == 989.0
        assert record["mfu"] == pytest.approx(record["flops_per_image"] * record["images_per_s"] / 989e12)
