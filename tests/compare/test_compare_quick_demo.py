"""He et al. 2015's effect at CI size: `experiment=quick_demo` (a 20-layer plain ReLU net on the synthetic
set) learns from Kaiming init and stays at chance from Glorot init, on two seeds. About 3 min on two CPU
cores.

Each run is judged by `make reproduce`'s own rule, the claim docs/comparing.md makes: Kaiming's final val/acc
>= 0.8 with no collapse after the warm-up (no epoch 0.2 below the best before it), Glorot's <= 0.2 (chance
is 0.1; 500 validation images put one standard error of a chance-level accuracy at
sqrt(0.1*0.9/500) = 0.013, so 0.2 is seven of them away). The rule and these two seeds were fixed before
the experiment moved from 24 to 20 layers (24 layers dipped 0.250 and 0.224 past the rule on two CPUs);
the five-seed, three-setting output is quoted in docs/comparing.md.
"""

import json

import pytest

from template import compare
from template.compare import reproduce

pytestmark = pytest.mark.slow


def test_quick_demo_kaiming_learns_and_glorot_stays_at_chance(tmp_path):
    folder = compare.run(["experiment=quick_demo", "compare.seeds=[0,1]", f"runs_dir={tmp_path}"])
    found = json.loads((folder / "results.json").read_text())["results"]

    rows = reproduce._rows("this machine", folder)
    assert sorted((row["init"], row["seed"]) for row in rows) == [
        ("glorot", 0),
        ("glorot", 1),
        ("kaiming", 0),
        ("kaiming", 1),
    ]
    failed = [row for row in rows if row["holds"] != "yes"]
    assert not failed, failed

    # The reason, at init: Glorot's activation variance halves at every square layer (2^-18 from conv1 to
    # conv19, less still with pooling; measured 8e-9 to 4.4e-7 on seeds 0-4). Kaiming's holds up to
    # width-8 finite-size drift (measured 0.005 to 0.32 on seeds 0-9), so the two are four decades apart.
    layers = {
        init: json.loads((tmp_path / found[init]["runs"][0]["run_dir"] / "summary.json").read_text())[
            "at_init"
        ]["layers"]
        for init in ("kaiming", "glorot")
    }
    convs = {
        init: [layer for layer in named if layer["name"].startswith("conv")] for init, named in layers.items()
    }
    assert len(convs["kaiming"]) == 19
    glorot_drop = convs["glorot"][-1]["act_var"] / convs["glorot"][0]["act_var"]
    kaiming_drop = convs["kaiming"][-1]["act_var"] / convs["kaiming"][0]["act_var"]
    assert glorot_drop < 1e-6 and kaiming_drop > 1e-3
