"""Where the monitor's output goes: scalars to every Lightning logger, histograms and pictures to W&B,
PNG files under plots/.

Scalars go through `Logger.log_metrics`, so TensorBoard and CSV loggers get them too. Histograms and
images have no logger-neutral interface in Lightning, so they go straight to a WandbLogger's run,
tagged with `trainer/global_step` like WandbLogger's own scalars so that all share one x axis.
Rank 0 only: under DDP the other ranks hold a dummy W&B experiment.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from lightning.pytorch.loggers import WandbLogger


def wandb_logger(trainer) -> WandbLogger | None:
    return next((logger for logger in trainer.loggers if isinstance(logger, WandbLogger)), None)


def scalars(trainer, metrics: dict[str, float], step: int, histograms: dict | None = None) -> None:
    """`metrics` to every logger, and to W&B's in the same `log` call `histograms` (`histograms`): one
    call, not two, is 2.6 ms against 4.2 ms for the bench's 130 scalars and 11 histograms (offline)."""
    for logger in trainer.loggers:
        extra = histograms if histograms and isinstance(logger, WandbLogger) else {}
        logger.log_metrics({**metrics, **extra}, step=step)


def histograms(names: Sequence[str], samples: Sequence[np.ndarray | None], bins: int) -> dict:
    """`act_hist/<layer>` from the finite sampled values, for W&B: np.histogram fails on NaN, and it runs
    on the host because torch.histc fails on CUDA under deterministic algorithms."""
    import wandb

    logged = {}
    for name, values in zip(names, samples, strict=True):
        finite = values[np.isfinite(values)] if values is not None else np.empty(0)
        if finite.size:
            logged[f"act_hist/{name}"] = wandb.Histogram(np_histogram=np.histogram(finite, bins))
    return logged


def picture(trainer, plots_dir: Path | None, name: str, png: bytes, step: int) -> None:
    """`plots_dir/<name>.png` and W&B's `plots/<name>`. The figure is handed over as PNG bytes because
    wandb.Image cannot take a matplotlib Figure without pyplot."""
    if plots_dir is not None:
        plots_dir.mkdir(parents=True, exist_ok=True)
        (plots_dir / f"{name}.png").write_bytes(png)
    logger = wandb_logger(trainer)
    if logger is not None:
        import wandb
        from PIL import Image

        logger.experiment.log(
            {f"plots/{name}": wandb.Image(Image.open(io.BytesIO(png))), "trainer/global_step": step}
        )
