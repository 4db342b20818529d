"""The point of the template, as CI can afford it: `make compare EXPERIMENT=quick_demo` on the synthetic
set — a deep plain ReLU net learns from Kaiming init and stays near chance from Glorot init (He et al.
2015, Figure 3), on two CPU cores in a few minutes."""

import json

import pytest

from template import compare


@pytest.mark.slow
def test_quick_demo_kaiming_learns_and_glorot_does_not(tmp_path):
    folder = compare.run(
        ["kaiming", "glorot"], [0], ["experiment=quick_demo", f"runs_dir={tmp_path / 'runs'}"]
    )
    found = json.loads((folder / "results.json").read_text())
    accuracy = {init: result["mean"]["val/acc"] for init, result in found["results"].items()}
    assert accuracy["kaiming"] >= 0.5, accuracy
    assert accuracy["glorot"] <= 0.2, accuracy
