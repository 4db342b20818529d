"""The configuration's schema: every key, its type and default, and the choices and bounds a type cannot
express. `configs/default.yaml` sets the same keys with comments; `template.config` loads, merges and
checks against this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class InitConfig:
    name: str = "kaiming"
    options: dict[str, Any] = field(default_factory=dict)  # passed to the scheme as keyword arguments


@dataclass
class ModelConfig:
    name: str = "plain"
    depth: int = 11  # weight layers, classifier included
    width: int = 16  # channels of the first stage; each later stage doubles it
    activation: str = "relu"  # template.models.activations
    negative_slope: float = 0.01  # leaky_relu only
    norm: str = "none"  # none | batch
    compile: bool = False  # torch.compile the model


@dataclass
class DataConfig:
    name: str = "cifar10"  # template.data.DATASETS
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
    vanish_factor: float = 1e-2  # first_failure: the theory (or, without one, the measurement) falls below
    explode_factor: float = 1e2  # ... or rises above this x the first layer's
    band_level: float = 0.99  # share of single weight draws the finite-width band holds
    on_nonfinite: str = "stop"  # stop | warn
    jacobian: str = (
        "never"  # the input-output Jacobian's spectrum: never | init (step 0) | every (logging step)
    )
    jacobian_samples: int = 2  # inputs of the batch it is measured at
    jacobian_probes: int = 8  # Hutchinson probes per input
    jacobian_from: str | None = None  # a monitored layer; default: the first shaped like the last hidden one
    jacobian_to: str | None = None  # default: the last hidden layer (the one before the classifier)


@dataclass
class CheckpointConfig:
    every_n_steps: int = 0  # also write last.ckpt every this many optimizer steps (0: at epoch ends only)


@dataclass
class LoggerConfig:
    name: str = "wandb"  # template.run.loggers.LOGGERS
    mode: str = "offline"  # offline | online | disabled (wandb only)
    project: str = __name__.split(".")[0]  # the package's name, which `make rename` changes
    group: str | None = None


@dataclass
class CompareConfig:
    """`make compare`: every init x seed, each an ordinary run of the rest of the config."""

    inits: list[str] = field(default_factory=lambda: ["kaiming", "glorot"])
    seeds: list[int] = field(default_factory=lambda: [0])
    depths: list[int] = field(default_factory=list)  # model.depth of each run; empty: the config's one
    # label -> the overrides that make it; an entry of `inits` naming a label runs those instead of
    # init.name=<entry>: runs that differ in more than the init's name (its options, the activation)
    variants: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class BenchConfig:
    """`make bench`'s own knobs; the model, data, logger and device it measures are the run's keys."""

    # One monitor interval (stats.every_n_steps): the timed window then holds exactly one logging step,
    # so the monitor's cost is counted in the proportion a real run pays it.
    steps: int = 50
    warmup: int = 5  # steps run before the timed window: allocator, cuDNN autotuning, W&B's first write
    turn_steps: int = 0  # steps of one side before the other takes its turn; 0: 1 on a CPU, 10 on a GPU
    repeats: int = 5
    threads: int = 0  # torch.set_num_threads; 0 keeps torch's choice
    loader_size: int = 10_000  # synthetic images the two loaders augment
    startup: bool = True  # measure startup_s (one `python -m template train` process per repeat)
    mfu_batch_size: int = 512  # ResNet-18 bf16 throughput and MFU, on a GPU only
    peak_tflops: float = 0.0  # the device's dense bf16 peak; 0 looks it up by device name


@dataclass
class PhaseConfig:
    """`make phase`: the (σ²_w, σ²_b) diagram of model.activation and, when asked, a trainability sweep."""

    weight_var_range: list[float] = field(default_factory=lambda: [0.5, 4.0])  # the diagram's σ²_w axis
    bias_var_range: list[float] = field(default_factory=lambda: [0.0, 0.5])  # and its σ²_b axis
    resolution: int = 25  # grid points per axis (the grid takes about 20 s at 25 on a CPU core)
    sweep: bool = False  # also train depths x weight_vars (init=meanfield) and draw their accuracy
    depths: list[int] = field(default_factory=lambda: [10, 20, 40, 80])
    weight_vars: list[float] = field(default_factory=lambda: [0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
    bias_var: float = 0.05  # σ²_b of the sweep's runs
    distribution: str = "normal"  # normal | orthogonal (delta-orthogonal convs)
    executor: str = "local"  # submitit: local (processes here) | debug (in this process) | slurm
    parallel: int = 2  # runs at once (local), the job array's parallelism (slurm)
    timeout_min: int = 60  # per run, minutes
    slurm: dict[str, Any] = field(default_factory=dict)  # submitit's slurm_<key> parameters, e.g. partition
    folder: str | None = None  # default: runs_dir/phase-<experiment>-<activation>; reused to resume


@dataclass
class Config:
    seed: int = 0
    experiment: str | None = None
    resume: str | None = None  # a run folder, or "last" for the newest one under runs_dir
    runs_dir: str = "runs"
    run_name: str | None = None  # default: <time>-<init>-<model><depth>-<data>-s<seed>
    threads: int = 0  # torch.set_num_threads for training; 0 keeps torch's choice (one per core)
    init: InitConfig = field(default_factory=InitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    trainer: dict[str, Any] = field(default_factory=dict)  # passed through to lightning.Trainer
    compare: CompareConfig = field(default_factory=CompareConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    phase: PhaseConfig = field(default_factory=PhaseConfig)


# Choices that no registry holds. Those a registry holds (init.name, model.name, model.activation,
# data.name, logger.name) are validated against it, in `config.validate`: one list per kind of choice.
CHOICES = {
    "model.norm": ("none", "batch"),
    "data.loader": ("torch", "device"),
    "optimizer.name": ("sgd", "adamw"),
    "scheduler.name": ("cosine", "none"),
    "stats.on_nonfinite": ("stop", "warn"),
    "stats.jacobian": ("init", "every", "never"),
    "phase.distribution": ("normal", "orthogonal"),
    "phase.executor": ("local", "debug", "slurm"),
    "logger.mode": ("offline", "online", "disabled"),
}
POSITIVE = (
    *("model.depth", "model.width", "data.batch_size", "stats.every_n_steps", "stats.histogram_bins"),
    *("stats.jacobian_samples", "stats.jacobian_probes"),
    *("bench.steps", "bench.repeats", "bench.loader_size", "bench.mfu_batch_size"),
    *("phase.resolution", "phase.parallel", "phase.timeout_min"),
)
OPEN_UNIT = ("stats.band_level",)  # strictly between 0 and 1
NON_NEGATIVE = (
    *("checkpoint.every_n_steps", "data.num_workers", "data.val_size", "scheduler.warmup_epochs"),
    *("optimizer.weight_decay", "bench.warmup", "bench.turn_steps", "bench.threads", "bench.peak_tflops"),
    "threads",
)
