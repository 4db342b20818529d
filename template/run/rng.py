"""Random-number state in every checkpoint, so a resumed run draws the same numbers as an unbroken one.

Lightning saves the model, optimizer, schedulers and loop counters but not the generators: without
them a run resumed at an epoch boundary shuffles and augments differently from the run it continues.
Stored as tensors and plain containers only, so checkpoints still load with `weights_only=True`.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from lightning.pytorch import Callback


class RngState(Callback):
    """Saved with each checkpoint, and restored as soon as Lightning restores the checkpoint: before it
    creates the first training iterator, whose creation draws from the generators as the iterator of
    every later epoch does in an unbroken run. (The sanity-check validation would draw in between; a
    resumed run skips it, see train.py.)"""

    def state_dict(self) -> dict:
        name, keys, position, has_gauss, cached = np.random.get_state()
        state = {
            "torch": torch.get_rng_state(),
            "python": list(random.getstate()[1]),
            "python_version": random.getstate()[0],
            "python_gauss": random.getstate()[2],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict) -> None:
        _apply(state)


def _apply(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
