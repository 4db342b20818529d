"""`make phase`: the (σ²_w, σ²_b) phase diagram of an activation from mean-field theory, and the
trainability sweep of many short runs over depth × σ²_w drawn over it, run in parallel by submitit."""

from template.sweep.phase import main

__all__ = ["main"]
