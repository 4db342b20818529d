"""`python -m template theory`: the per-layer prediction before training, which is what the monitor draws
as theory at step 0, the activation's phase and its critical line, and one-line refusals."""

import json

import pytest

from template import config
from template.__main__ import main
from template.predict import predict
from tests.helpers.tiny import tiny

SMALL = tiny("model.width=8", "model.activation=tanh", "init=critical", "seed=3")


def test_theory_prints_each_layer_the_phase_and_the_critical_line(capsys):
    assert main(["theory", *SMALL]) == 0
    out = capsys.readouterr().out
    for layer in ("conv1", "conv2", "conv3", "conv4", "fc"):
        assert f"│ {layer:>5} │" in out or f"│ {layer} │" in out, layer
    # the phase comes from the init's own (σ²_w, σ²_b), exactly critical, not from the drawn weights'
    # median (0.9899, "ordered", when it did)
    out = " ".join(out.split())  # rich wraps long lines
    assert "Tanh at (σ²_w, σ²_b) = (1.761, 0.05), as init=critical sets it (the drawn weights' median:" in out
    assert "χ₁ = 1 (critical), depth scale ξ_c = inf layers" in out
    assert (
        "critical line (stable fixed points with χ₁ = 1) of Tanh: σ²_b=0: σ²_w=1, σ²_b=0.01: σ²_w=1.424, "
        "σ²_b=0.05: σ²_w=1.761" in out
    )


def test_theory_says_where_an_activation_has_no_stable_critical_point(capsys):
    gelu = [o for o in SMALL if not o.startswith(("model.activation", "init="))]
    assert main(["theory", *gelu, "model.activation=gelu", "init=kaiming"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "the drawn weights' median (init=kaiming states no σ²_w)" in out
    assert "σ²_b=0.05: none (χ₁ = 1 unstable at σ²_w=2.303; saddle-node at σ²_w=2.416 (χ₁=0.904))" in out
    assert "σ²_b=0.2: σ²_w=1.971" in out
    assert "stable critical points exist from σ²_b ≈ 0.173 on" in out


def test_theory_is_what_the_monitor_draws_at_step_zero(tmp_path, capsys):
    cfg = config.load([*SMALL, f"runs_dir={tmp_path}", "trainer.max_steps=1", "logger=none"])
    prediction = predict(cfg)
    assert main(["train", *SMALL, f"runs_dir={tmp_path}", "trainer.max_steps=1", "logger=none",
                 "trainer.enable_progress_bar=false"]) == 0  # fmt: skip
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text())
    monitored = summary["at_init"]["layers"]
    assert [layer["name"] for layer in monitored] == [layer["name"] for layer in prediction["layers"]]
    # same weights (same seed); both read the first training batch, but its augmentation is drawn anew
    for theirs, ours in zip(monitored, prediction["layers"], strict=True):
        assert theirs["act_var_theory"] == pytest.approx(ours["act_var"], rel=0.03), ours["name"]
        assert theirs["corr_theory"] == pytest.approx(ours["corr"], abs=0.02), ours["name"]


def test_theory_refuses_a_bad_key_in_one_line(capsys):
    assert main(["theory", "model.dept=5"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown config key 'model.dept'")
