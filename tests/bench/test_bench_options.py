"""Bench options: defaults follow the training config, and every bad key or value is one UsageError line
that names the valid choices, raised before anything is measured."""

import pytest
import torch

from template import schema
from template.bench.options import Options, parse
from template.errors import UsageError


def test_defaults_measure_the_model_make_train_trains():
    options = parse([])
    assert (options.model, options.depth, options.width, options.batch_size) == (
        schema.ModelConfig.name,
        schema.ModelConfig.depth,
        schema.ModelConfig.width,
        schema.DataConfig.batch_size,
    )
    assert options.steps == schema.StatsConfig.every_n_steps  # one monitor logging step per window
    assert options.device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_values_are_converted_to_their_types():
    options = parse(
        [
            "model=resnet",
            "depth=20",
            "batch_size=64",
            "startup=false",
            "peak_tflops=989",
            "device=cpu",
            "logger=none",
        ]
    )
    assert options == Options(
        model="resnet", depth=20, batch_size=64, startup=False, peak_tflops=989.0, device="cpu", logger="none"
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("stepz=3", "valid keys: model, depth, width, batch_size, steps"),
        ("steps", "not of the form key=value"),
        ("device=tpu", "choose one of: auto, cpu, cuda"),
        ("model=mlp", "choose one of: plain, resnet, vgg"),
        ("logger=tensorboard", "choose one of: wandb, none"),
        ("steps=ten", "must be an integer"),
        ("steps=0", "must be a positive integer"),
        ("warmup=-1", "must not be negative"),
        ("startup=maybe", "must be true or false"),
        ("peak_tflops=fast", "must be a number"),
        ("model=resnet", "not a resnet depth; choose one of"),  # depth 11 is not a ResNet
    ],
)
def test_bad_input_is_one_line_naming_the_choices(override, expected):
    with pytest.raises(UsageError, match=expected) as error:
        parse([override])
    assert "\n" not in str(error.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused():
    with pytest.raises(UsageError, match="torch.cuda.is_available"):
        parse(["device=cuda"])
