"""Per-layer activation and gradient variance during training, next to He et al.'s theory.

`VarianceMonitor` is the Lightning callback; `NonFiniteError` is what it raises when a non-finite
activation or loss stops the run (one-line message, for the CLI). `theory` holds the analytic
relations, `plots` the figures, `accumulator` the device-side statistics.
"""

from template.monitor.callback import NonFiniteError, VarianceMonitor

__all__ = ["NonFiniteError", "VarianceMonitor"]
