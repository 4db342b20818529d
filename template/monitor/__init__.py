"""Per-layer activation and gradient variance during training, next to He et al.'s theory.

`VarianceMonitor` is the Lightning callback; `NonFiniteError` is what it raises when a non-finite
activation, loss or gradient stops the run (one-line message, for the CLI). `accumulator` holds the
device-side statistics, `snapshot` what the host reads from them, `nonfinite` the per-step check and
`replay` what names the layer, `criteria` the judgement against theory, `plots` the figures.
"""

from template.monitor.callback import VarianceMonitor
from template.monitor.nonfinite import NonFiniteError

__all__ = ["NonFiniteError", "VarianceMonitor"]
