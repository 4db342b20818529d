"""`make compare`: every init x seed of an experiment side by side (`comparison.py` says how)."""

from template.compare.comparison import main, run

__all__ = ["main", "run"]
