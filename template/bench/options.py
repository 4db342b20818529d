"""The bench's key=value options, checked before any measurement starts.

The bench has its own small set of keys rather than the training config's dotted ones: it is not a run,
and most config keys (init options, trainer flags, data paths) would only make its numbers harder to
compare between machines. The model keys default to the training config's defaults, so `make bench`
measures the model `make train` trains. A bad key or value is one `UsageError` line naming the choices.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch

from template import models, schema
from template.errors import UsageError


@dataclass(frozen=True)
class Options:
    model: str = schema.ModelConfig.name
    depth: int = schema.ModelConfig.depth
    width: int = schema.ModelConfig.width
    batch_size: int = schema.DataConfig.batch_size
    # One monitor interval (stats.every_n_steps): the timed window then holds exactly one logging step,
    # so the monitor's cost is counted in the proportion a real run pays it.
    steps: int = schema.StatsConfig.every_n_steps
    warmup: int = 5  # steps run before the timed window: allocator, cuDNN autotuning, W&B's first write
    repeats: int = 5
    device: str = "auto"  # auto: cuda when torch.cuda.is_available(), else cpu
    threads: int = 0  # torch.set_num_threads; 0 keeps torch's choice
    logger: str = "wandb"  # the template's default logger, offline into a temporary folder; or none
    loader_size: int = 10_000  # images in the in-memory uint8 set the two loaders augment
    workers: int = schema.DataConfig.num_workers  # torchvision DataLoader worker processes
    startup: bool = True  # measure startup_s (one `python -m template train` subprocess per repeat)
    mfu_batch_size: int = 512  # ResNet-18 bf16 throughput and MFU, on a GPU only
    peak_tflops: float = 0.0  # the device's dense bf16 peak; 0 looks it up by device name
    runs_dir: str = schema.Config.runs_dir

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)


CHOICES = {"device": ("auto", "cpu", "cuda"), "logger": ("wandb", "none")}
POSITIVE = ("depth", "width", "batch_size", "steps", "repeats", "loader_size", "mfu_batch_size")
NON_NEGATIVE = ("warmup", "threads", "workers", "peak_tflops")


def parse(overrides: list[str]) -> Options:
    """`key=value` strings to validated `Options`, with `device=auto` resolved."""
    types = {f.name: f.type for f in fields(Options)}
    values = {}
    for override in overrides:
        key, sep, text = (part.strip() for part in override.partition("="))
        if not sep:
            raise UsageError(f"bench option {override!r} is not of the form key=value")
        if key not in types:
            raise UsageError(f"bench option {key!r} is unknown; valid keys: {', '.join(types)}")
        values[key] = _convert(key, text, types[key])
    options = Options(**values)
    _check(options)
    if options.device == "auto":
        options = Options(**{**asdict(options), "device": "cuda" if torch.cuda.is_available() else "cpu"})
    return options


def _convert(key: str, text: str, kind: str):
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise UsageError(f"bench option {key}={text!r} must be true or false")
        return text.lower() == "true"
    if kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise UsageError(
                f"bench option {key}={text!r} must be {'an integer' if kind == 'int' else 'a number'}"
            ) from None
    return text


def _check(options: Options) -> None:
    _choice("model", options.model, models.available())
    models.build(options.model, depth=options.depth, width=options.width)  # refuses e.g. resnet depth=19
    for key, choices in CHOICES.items():
        _choice(key, getattr(options, key), choices)
    for key in POSITIVE:
        if getattr(options, key) < 1:
            raise UsageError(f"bench option {key}={getattr(options, key)} must be a positive integer")
    for key in NON_NEGATIVE:
        if getattr(options, key) < 0:
            raise UsageError(f"bench option {key}={getattr(options, key)} must not be negative")
    if options.device == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            "bench option device=cuda, but torch.cuda.is_available() is False; choose one of: auto, cpu"
        )


def _choice(key: str, value, choices) -> None:
    if value not in choices:
        raise UsageError(f"bench option {key}={value!r} is unknown; choose one of: {', '.join(choices)}")
