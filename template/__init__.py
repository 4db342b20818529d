"""A PyTorch Lightning template for weight-initialisation research.

What a fork builds on: `template.inits` (the registry), `template.models` (`build`), and, importable
from here, the LightningModule `Classifier`, the variance-monitor callback `VarianceMonitor`, the
LightningDataModule base class `DataModule` and the factory `build_datamodule` (a `data.name` to its
module), and `load_config` for scripted runs (then `template.train.train`).
They are imported on first use, so `python -m template --help` stays fast.
"""

from importlib import import_module

_EXPORTS = {
    "Classifier": "template.module",
    "VarianceMonitor": "template.monitor",
    "NonFiniteError": "template.monitor",
    "DataModule": "template.data",
    "build_datamodule": "template.data",
    "load_config": "template.config",
    "UsageError": "template.errors",
}
_RENAMED = {"build_datamodule": "build", "load_config": "load"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), _RENAMED.get(name, name))
