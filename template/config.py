"""The typed configuration: defaults from `configs/default.yaml`, an optional experiment overlay, then
command-line overrides, merged onto the dataclass schema (`template.schema`) with OmegaConf.

OmegaConf's structured configs already refuse unknown keys and wrong types; this module turns their
errors into one-line `UsageError`s that name the key and the valid choices, and adds the checks a
schema cannot express (names that must be registered, numbers that must be positive, Trainer keys that
must exist). Everything is checked here, before any work starts.
"""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from template.errors import UsageError
from template.run import resume
from template.schema import CHOICES, NON_NEGATIVE, OPEN_UNIT, POSITIVE, Config

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"

# `init=kaiming` on the command line means `init.name=kaiming`; likewise for these groups.
NAMED_GROUPS = ("init", "model", "data", "logger", "optimizer", "scheduler")


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
        layers = [saved_config(run), *map(_trainer_preset, presets), cli]
    else:
        layers = [
            OmegaConf.load(CONFIGS_DIR / "default.yaml"),
            *_experiment(cli),
            *map(_trainer_preset, presets),
            cli,
        ]
    cfg = OmegaConf.structured(Config)
    for layer in layers:
        if layer is cli:
            _options_follow_the_scheme(cfg, cli)
        cfg = _merge(cfg, layer)
    _resolve(cfg)
    validate(cfg)
    if run is not None:
        resume.check_unchanged(_merge(OmegaConf.structured(Config), layers[0]), cfg, run)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _options_follow_the_scheme(cfg: DictConfig, cli: DictConfig) -> None:
    """`init.options` are the options of `init.name`: a command line naming another scheme than the
    experiment's starts it from its own defaults (plus the init.options it gives): `make compare
    EXPERIMENT=xiao2018 INITS="critical kaiming"` does not hand critical's options to kaiming."""
    name = OmegaConf.select(cli, "init.name")
    if name is not None and name != cfg.init.name:
        cfg.init.options = {}


def saved_config(run: Path) -> DictConfig:
    """A run folder's config.yaml without its `provenance` block, which records the run, not the schema."""
    saved = OmegaConf.load(run / "config.yaml")
    saved.pop("provenance", None)
    return saved


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


def describe() -> str:
    """What every command takes: configs/default.yaml as written (each key, its default, a comment),
    then the choices the registries and the schema hold, the experiments and the trainer presets."""
    choices = {**registry_choices(), **CHOICES, "experiment": experiments(), "trainer": trainer_presets()}
    width = max(map(len, choices)) + 2
    lines = [f"  {key:<{width}}{', '.join(map(str, values))}" for key, values in choices.items()]
    return "\n".join([(CONFIGS_DIR / "default.yaml").read_text().rstrip(), "", "# choices", *lines, ""])


def registry_choices() -> dict[str, list[str]]:
    """The choices each registry holds, by the config key that names one. Imports are local: they are
    the heavy part of start-up."""
    from template import data, inits, models
    from template.models import activations
    from template.run import loggers

    return {
        "init.name": inits.available(),
        "model.name": models.available(),
        "model.activation": activations.available(),
        "data.name": data.available(),
        "logger.name": loggers.available(),
    }


def validate(cfg: DictConfig) -> None:
    """The checks a schema cannot express."""
    from template import inits

    for key, choices in registry_choices().items():
        _check_choice(key, OmegaConf.select(cfg, key), choices)
    inits.check_options(cfg.init.name, OmegaConf.to_container(cfg.init.options))
    variants = list(cfg.compare.variants)
    for label in variants:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", label):
            raise UsageError(
                f"compare.variants: {label!r} is not a usable label (it names run folders); "
                "use letters, digits, '_', '-' and '.'"
            )
    _check_list("compare.inits", list(cfg.compare.inits), "[kaiming,glorot]", inits.available() + variants)
    _check_list("compare.seeds", list(cfg.compare.seeds), "[0,1,2]")
    for key, choices in CHOICES.items():
        _check_choice(key, OmegaConf.select(cfg, key), choices)
    for key in POSITIVE:
        if OmegaConf.select(cfg, key) < 1:
            raise UsageError(f"{key}={OmegaConf.select(cfg, key)} must be a positive integer")
    for key in NON_NEGATIVE:
        if OmegaConf.select(cfg, key) < 0:
            raise UsageError(f"{key}={OmegaConf.select(cfg, key)} must not be negative")
    for key in OPEN_UNIT:
        if not 0 < OmegaConf.select(cfg, key) < 1:
            raise UsageError(f"{key}={OmegaConf.select(cfg, key)} must lie strictly between 0 and 1")
    for key in ("stats.vanish_factor", "stats.explode_factor"):
        if not OmegaConf.select(cfg, key) > 0:
            raise UsageError(f"{key}={OmegaConf.select(cfg, key)} must be positive")
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


def _check_list(key: str, items: list, example: str, choices=None) -> None:
    """A non-empty list without repeats, of registered names or of non-negative integers."""
    if not items:
        raise UsageError(f"{key}=[] is empty; name one or more, e.g. {key}={example}")
    for item in items:
        if choices is not None:
            _check_choice(key, item, choices)
        elif item < 0:
            raise UsageError(f"{key}: {item} is negative; seeds are non-negative integers")
    repeated = sorted({str(item) for item in items if items.count(item) > 1})
    if repeated:
        raise UsageError(f"{key}: {', '.join(repeated)} named more than once")


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
        if "ListConfig" in str(error):
            raise UsageError(
                f"{key} takes a list, e.g. {key}=[a,b] (quoted in a shell: '{key}=[a,b]')"
            ) from None
        if "[" in key:  # an item of a list: its type, not its name, is wrong
            raise UsageError(f"bad value for {key}: {_first_line(error)}") from None
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
