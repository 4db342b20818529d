"""A PyTorch Lightning template for weight-initialisation research.

What a fork builds on: `template.inits` (the registry), `template.models` (`build`), `template.data`
(`build`, a `data.name` to its DataModule), `template.config` (`load`) and `template.train` (`train`)
for scripted runs, and, importable from here, the LightningModule `Classifier`, the variance-monitor
callback `VarianceMonitor`, the LightningDataModule base class `DataModule`, and the exceptions.
Each is imported on first use (PEP 562's module `__getattr__`), so `python -m template --help` and a
bad-input refusal do not pay torch's import.
"""

from importlib import import_module

_EXPORTS = {
    "Classifier": "template.module",
    "VarianceMonitor": "template.monitor",
    "NonFiniteError": "template.monitor",
    "DataModule": "template.data",
    "UsageError": "template.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
