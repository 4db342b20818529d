"""The typed configuration: defaults from `configs/default.yaml`, an optional experiment overlay, then
command-line overrides, merged onto dataclass schemas with OmegaConf.

OmegaConf's structured configs already refuse unknown keys and wrong types; this module turns their
errors into one-line `UsageError`s that name the key and the valid choices, and adds the checks a
schema cannot express (names that must be registered, numbers that must be positive, Trainer keys that
must exist). Everything is checked here, before any work starts.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from template import resume
from template.errors import UsageError

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"

# `init=kaiming` on the command line means `init.name=kaiming`; likewise for these groups.
NAMED_GROUPS = ("init", "model", "data", "logger", "optimizer", "scheduler")


@dataclass
class InitConfig:
    name: str = "kaiming"
    options: dict[str, Any] = field(default_factory=dict)  # passed to the scheme as keyword arguments


@dataclass
class ModelConfig:
    name: str = "plain"
    depth: int = 11  # weight layers, classifier included
    width: int = 16  # channels of the first stage; each later stage doubles it
    activation: str = "relu"  # relu | leaky_relu | tanh | gelu
    negative_slope: float = 0.01  # leaky_relu only
    norm: str = "none"  # none | batch
    compile: bool = False  # torch.compile the model


@dataclass
class DataConfig:
    name: str = "cifar10"  # cifar10 | cifar100 | synthetic
    root: str = "data"
    batch_size: int = 128  # per device (Lightning's convention): the global batch is devices x this
    num_workers: int = 2
    val_size: int = 5000  # held out of the training set with a fixed seed
    loader: str = "torch"  # torch | device (whole data set resident on the training device)
    download: bool = True
    synthetic_train_size: int = 5000
    synthetic_test_size: int = 1000


@dataclass
class OptimizerConfig:
    name: str = "sgd"  # sgd | adamw
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False


@dataclass
class SchedulerConfig:
    name: str = "cosine"  # cosine | none
    warmup_epochs: int = 0


@dataclass
class StatsConfig:
    every_n_steps: int = 50
    modules: list[str] = field(default_factory=lambda: ["Conv2d", "Linear"])
    histogram_bins: int = 64
    vanish_factor: float = 1e-2  # flag a layer whose activation variance falls below this x the first's
    explode_factor: float = 1e2  # ... or rises above this x the first's
    on_nonfinite: str = "stop"  # stop | warn


@dataclass
class LoggerConfig:
    name: str = "wandb"  # wandb | tensorboard | csv | none
    mode: str = "offline"  # offline | online | disabled (wandb only)
    project: str = "template"
    group: str | None = None


@dataclass
class Config:
    seed: int = 0
    experiment: str | None = None
    resume: str | None = None  # a run folder, or "last" for the newest one under runs_dir
    runs_dir: str = "runs"
    run_name: str | None = None  # default: <time>-<init>-<model><depth>-<data>-s<seed>
    init: InitConfig = field(default_factory=InitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    trainer: dict[str, Any] = field(default_factory=dict)  # passed through to lightning.Trainer


CHOICES = {
    "model.activation": ("relu", "leaky_relu", "tanh", "gelu"),
    "model.norm": ("none", "batch"),
    "data.name": ("cifar10", "cifar100", "synthetic"),
    "data.loader": ("torch", "device"),
    "optimizer.name": ("sgd", "adamw"),
    "scheduler.name": ("cosine", "none"),
    "stats.on_nonfinite": ("stop", "warn"),
    "logger.name": ("wandb", "tensorboard", "csv", "none"),
    "logger.mode": ("offline", "online", "disabled"),
}
POSITIVE = ("model.depth", "model.width", "data.batch_size", "stats.every_n_steps", "stats.histogram_bins")
NON_NEGATIVE = ("data.num_workers", "data.val_size", "scheduler.warmup_epochs", "optimizer.weight_decay")


def experiments() -> list[str]:
    return sorted(p.stem for p in (CONFIGS_DIR / "experiment").glob("*.yaml"))


def load(overrides: list[str] = ()) -> DictConfig:
    """Defaults, then `experiment=<name>`'s overlay, then the overrides; validated, read-only."""
    presets = [o.partition("=")[2] for o in overrides if o.startswith("trainer=")]
    overrides = [_expand_shorthand(o) for o in overrides if not o.startswith("trainer=")]
    cli = _parse_dotlist(overrides)
    run = _run_to_resume(cli)
    if run is not None:  # the saved config replaces defaults and experiment
        cli.resume = str(run)
        layers = [OmegaConf.load(run / "config.yaml"), *map(_trainer_preset, presets), cli]
    else:
        layers = [
            OmegaConf.load(CONFIGS_DIR / "default.yaml"),
            *_experiment(cli),
            *map(_trainer_preset, presets),
            cli,
        ]
    cfg = OmegaConf.structured(Config)
    for layer in layers:
        cfg = _merge(cfg, layer)
    _resolve(cfg)
    validate(cfg)
    if run is not None:
        resume.check_unchanged(_merge(OmegaConf.structured(Config), layers[0]), cfg, run)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _experiment(cli: DictConfig) -> list[DictConfig]:
    experiment = _plain(cli, "experiment")
    if experiment is None:
        return []
    if experiment not in experiments():
        raise UsageError(f"experiment={experiment!r} is unknown; choose one of: {', '.join(experiments())}")
    return [OmegaConf.load(CONFIGS_DIR / "experiment" / f"{experiment}.yaml")]


def trainer_presets() -> list[str]:
    return sorted(p.stem for p in (CONFIGS_DIR / "trainer").glob("*.yaml"))


def _trainer_preset(name: str) -> DictConfig:
    """`trainer=ddp` applies configs/trainer/ddp.yaml: a named set of Trainer arguments."""
    if name not in trainer_presets():
        raise UsageError(f"trainer={name!r} is unknown; choose one of: {', '.join(trainer_presets())}")
    return OmegaConf.create({"trainer": OmegaConf.load(CONFIGS_DIR / "trainer" / f"{name}.yaml")})


def _run_to_resume(cli: DictConfig) -> Path | None:
    wanted = _plain(cli, "resume")
    if wanted in (None, ""):
        return None
    return resume.find_run(str(wanted), str(OmegaConf.select(cli, "runs_dir") or Config.runs_dir))


def validate(cfg: DictConfig) -> None:
    """The checks a schema cannot express. Imports are local: they are the heavy part of start-up."""
    from template import inits, models

    _check_choice("init.name", cfg.init.name, inits.available())
    inits.check_options(cfg.init.name, OmegaConf.to_container(cfg.init.options))
    _check_choice("model.name", cfg.model.name, models.available())
    for key, choices in CHOICES.items():
        _check_choice(key, OmegaConf.select(cfg, key), choices)
    for key in POSITIVE:
        if OmegaConf.select(cfg, key) < 1:
            raise UsageError(f"{key}={OmegaConf.select(cfg, key)} must be a positive integer")
    for key in NON_NEGATIVE:
        if OmegaConf.select(cfg, key) < 0:
            raise UsageError(f"{key}={OmegaConf.select(cfg, key)} must not be negative")
    if not cfg.optimizer.lr > 0:
        raise UsageError(f"optimizer.lr={cfg.optimizer.lr} must be positive")
    _check_trainer(cfg.trainer)


def _check_trainer(trainer: DictConfig) -> None:
    from lightning import Trainer

    valid = [p for p in inspect.signature(Trainer.__init__).parameters if p != "self"]
    for key in trainer:
        if key not in valid:
            raise UsageError(f"trainer.{key} is not a Trainer argument; valid keys: {', '.join(valid)}")
    epochs = trainer.get("max_epochs")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise UsageError(f"trainer.max_epochs={epochs!r} must be a positive integer")
    _try_trainer(OmegaConf.to_container(trainer))


def _try_trainer(arguments: dict) -> None:
    """Build a Trainer that does nothing, so Lightning itself judges accelerator, devices, strategy and
    precision (more devices than exist, a GPU that is not there) before any work starts."""
    from lightning import Trainer

    lightning_log = logging.getLogger("lightning.pytorch")
    level, lightning_log.level = lightning_log.level, logging.ERROR
    silent = {"enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}
    try:
        Trainer(**{**silent, **arguments, "logger": False})
    except Exception as error:  # noqa: BLE001 - whatever Lightning refuses, the user hears in one line
        keys = ("accelerator", "devices", "strategy", "precision", "num_nodes")
        given = ", ".join(f"trainer.{key}={arguments[key]!r}" for key in keys if key in arguments)
        raise UsageError(f"{given}: {_first_line(error)}") from None
    finally:
        lightning_log.level = level


def _check_choice(key: str, value: Any, choices) -> None:
    if value not in choices:
        raise UsageError(f"{key}={value!r} is unknown; choose one of: {', '.join(choices)}")


def _expand_shorthand(override: str) -> str:
    key, sep, value = override.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"override {override!r} is not of the form key=value")
    return f"{key}.name={value}" if key.strip() in NAMED_GROUPS else override


def _parse_dotlist(overrides: list[str]) -> DictConfig:
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except (OmegaConfBaseException, yaml.YAMLError, ValueError) as error:
        raise UsageError(f"cannot parse overrides {' '.join(overrides)!r}: {_first_line(error)}") from None


def _merge(cfg: DictConfig, layer: DictConfig) -> DictConfig:
    try:
        return OmegaConf.merge(cfg, layer)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "?"
        parent = OmegaConf.select(cfg, key.rpartition(".")[0]) if "." in key else cfg
        if isinstance(parent, DictConfig) and key.rpartition(".")[2] not in parent:
            valid = ", ".join(str(k) for k in parent)
            raise UsageError(f"unknown config key {key!r}; valid keys here: {valid}") from None
        raise UsageError(f"bad value for {key}: {_first_line(error)}") from None


def _plain(cli: DictConfig, key: str):
    """A key read before the layers are merged, when an interpolation has nothing to refer to yet."""
    try:
        return OmegaConf.select(cli, key)
    except OmegaConfBaseException as error:
        raise UsageError(f"bad value for {key}: {_first_line(error)}") from None


def _resolve(cfg: DictConfig) -> None:
    """Resolve `${...}` interpolations now, so a dangling one is a refusal here and not a crash later."""
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "?"
        raise UsageError(f"bad value for {key}: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
