"""`make install`'s virtual environment holds its packages' bytecode: without it every process — each
pytest worker, each `python -m template`, each DDP rank — compiles torch and Lightning from source where
Python writes no bytecode of its own (PYTHONDONTWRITEBYTECODE, a read-only folder): `import lightning`
took 16.5 s instead of 7.3 s on a 2-core machine. A virtual environment made before the Makefile compiled
it fails here until it is made again (`rm -rf .venv && make install`)."""

import importlib
import importlib.util
from pathlib import Path

import pytest


@pytest.mark.parametrize("name", ["torch", "lightning", "torch._dynamo.symbolic_convert", "wandb"])
def test_the_installed_packages_have_their_bytecode(name):
    source = importlib.import_module(name).__file__
    assert Path(importlib.util.cache_from_source(source)).is_file(), f"no bytecode for {source}"
