"""`make bench`: the template's speed next to a plain PyTorch loop (`measure.py` says what and how)."""

from template.bench.measure import main, run

__all__ = ["main", "run"]
