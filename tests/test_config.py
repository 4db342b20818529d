"""The config loader: defaults, experiments, overrides, and a one-line refusal for every bad value."""

import dataclasses
import inspect

import pytest
from omegaconf import OmegaConf

from template import config
from template.errors import UsageError
from template.monitor import callback
from template.schema import CHOICES, Config, StatsConfig
from template.sweep import engine


def test_defaults_load_and_are_read_only():
    cfg = config.load([])
    assert cfg.init.name == "kaiming"
    assert cfg.model.name == "plain"
    assert cfg.data.name == "cifar10"
    with pytest.raises(Exception, match="read-only"):
        cfg.seed = 3


def test_shorthand_and_dotted_overrides():
    cfg = config.load(["init=glorot", "data=synthetic", "model.depth=30", "optimizer.lr=0.003", "seed=7"])
    assert (cfg.init.name, cfg.data.name, cfg.model.depth, cfg.optimizer.lr, cfg.seed) == (
        "glorot",
        "synthetic",
        30,
        0.003,
        7,
    )


def test_trainer_keys_pass_through():
    cfg = config.load(["trainer.max_steps=5", "trainer.limit_val_batches=2"])
    assert cfg.trainer.max_steps == 5 and cfg.trainer.limit_val_batches == 2


def test_init_options_reach_the_config():
    cfg = config.load(["init=kaiming_uniform", "init.options.mode=fan_out"])
    assert cfg.init.options.mode == "fan_out"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["init=foo"], "init.name='foo' is unknown; choose one of: "),
        (["model=foo"], "model.name='foo' is unknown; choose one of: plain"),
        (
            ["data=imagenet"],
            "data.name='imagenet' is unknown; choose one of: "
            "cifar10, cifar100, mnist, fashion_mnist, svhn, digits, digits_cifar, synthetic",
        ),
        (["logger=mlflow"], "logger.name='mlflow' is unknown; choose one of: wandb, tensorboard, csv, none"),
        (["model.dept=3"], "unknown config key 'model.dept'; valid keys here: name, depth, width,"),
        (["foo=1"], "unknown config key 'foo'; valid keys here: seed, experiment,"),
        (["model.depth=abc"], "bad value for model.depth: Value 'abc' of type 'str' could not be converted"),
        (["model.depth=0"], "model.depth=0 must be a positive integer"),
        (["data.batch_size=0"], "data.batch_size=0 must be a positive integer"),
        (["data.batch_size=1.5"], "bad value for data.batch_size: Value '1.5' of type 'float' could not"),
        (["trainer.max_epochs=0"], "trainer.max_epochs=0 must be a positive integer"),
        (["trainer.max_epochs=abc"], "trainer.max_epochs='abc' must be a positive integer"),
        (["trainer.max_epochs=1.5"], "trainer.max_epochs=1.5 must be a positive integer"),
        (["trainer.max_epoch=3"], "trainer.max_epoch is not a Trainer argument; valid keys: accelerator,"),
        (["optimizer.lr=-1"], "optimizer.lr=-1.0 must be positive"),
        (
            ["init.options.foo=1"],
            "init.options.foo is not an option of kaiming_uniform; valid options: a, mode,",
        ),
        (
            ["init.options.mode=xx"],
            "init.options.mode='xx' is not valid for kaiming_uniform; choose one of: fan_in, fan_out",
        ),
        (
            ["trainer.accelerator=tpu"],  # absent on CPU and GPU machines alike
            "trainer.accelerator='tpu', trainer.devices=1, trainer.strategy='auto',",
        ),
        (
            ["trainer.precision=17"],
            "trainer.accelerator='auto', trainer.devices=1, trainer.strategy='auto', "
            "trainer.precision=17, trainer.num_nodes=1: Precision 17 is invalid.",
        ),
        (["trainer=foo"], "trainer='foo' is unknown; choose one of: cpu_ddp, ddp, ddp_spawn, fsdp"),
        (["experiment=nope"], "experiment='nope' is unknown; choose one of: "),
        (["experiment=${seed}"], "bad value for experiment: Interpolation key 'seed' not found"),
        (["resume=${nope}"], "bad value for resume: Interpolation key 'nope' not found"),
        (["depth"], "override 'depth' is not of the form key=value"),
        (["=3"], "override '=3' is not of the form key=value"),
    ],
)
def test_bad_input_is_one_line_naming_the_value(overrides, message):
    with pytest.raises(UsageError) as caught:
        config.load(overrides)
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_naming_another_scheme_drops_the_experiments_init_options():
    """xiao2018 sets critical's options; kaiming named on the command line starts from its own defaults,
    while options given with it, or the experiment's own scheme named again, keep theirs."""
    assert dict(config.load(["experiment=xiao2018", "init=kaiming"]).init.options) == {}
    kept = config.load(["experiment=xiao2018", "init.name=critical", "init.options.distribution=normal"])
    assert dict(kept.init.options) == {"distribution": "normal", "bias_var": 0.001, "start": "fixed_point"}
    given = config.load(["experiment=xiao2018", "init=kaiming", "init.options.mode=fan_out"])
    assert dict(given.init.options) == {"mode": "fan_out"}


def test_default_yaml_writes_the_schemas_defaults_and_nothing_else():
    """The schema is where a default lives; default.yaml repeats each one beside its comment (what `--help`
    prints), so the two must agree key for key. Only `trainer`, Lightning's own keys, is the file's alone."""
    schema = OmegaConf.to_container(OmegaConf.structured(Config))
    written = OmegaConf.to_container(OmegaConf.load(config.CONFIGS_DIR / "default.yaml"))
    assert set(schema["trainer"]) == set()  # passed through to Trainer: the schema leaves it open
    assert {**written, "trainer": {}} == schema


def test_the_monitor_defaults_and_choices_are_the_schemas():
    """`VarianceMonitor` is built by hand in a fork's own loop: its defaults are stats.*'s; the choice
    lists the monitor and the sweep's engine check are the schema's."""
    signature = inspect.signature(callback.VarianceMonitor.__init__).parameters
    for field in dataclasses.fields(StatsConfig):
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        assert signature[field.name].default == (tuple(default) if isinstance(default, list) else default)
    assert CHOICES["stats.jacobian"] == callback.JACOBIAN_WHEN
    assert CHOICES["phase.executor"] == engine.EXECUTORS
    assert CHOICES["stats.on_nonfinite"] == callback.ON_NONFINITE
