"""What the package docstring and the README promise a fork can import from `template`, and that
importing it stays cheap."""

import subprocess
import sys

import lightning as L
import pytest

import template as package  # named once: `make rename` rewrites this line, not the word
from template import data, errors, module, monitor


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Classifier", module.Classifier),
        ("VarianceMonitor", monitor.VarianceMonitor),
        ("NonFiniteError", monitor.NonFiniteError),
        ("DataModule", data.DataModule),
        ("UsageError", errors.UsageError),
    ],
)
def test_exports_are_the_documented_objects(name, expected):
    assert getattr(package, name) is expected
    assert name in package.__all__


def test_exports_are_lightning_pieces():
    assert issubclass(package.Classifier, L.LightningModule)
    assert issubclass(package.DataModule, L.LightningDataModule)
    assert issubclass(package.VarianceMonitor, L.Callback)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match=f"^module '{package.__name__}' has no attribute 'Trainer'$"):
        package.Trainer  # noqa: B018


def test_importing_the_package_does_not_import_torch():
    """`python -m template --help` and a bad-input refusal should not pay torch's import."""
    probe = f"import sys, {package.__name__}; print('torch' in sys.modules, 'lightning' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
