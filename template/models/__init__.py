"""Models built by name: `template.models.build("plain", depth=30, in_channels=1)`; the list is in
`registry.py`, a fork's model is one entry there."""

from template.models.registry import MODELS, available, build

__all__ = ["MODELS", "available", "build"]
