"""`make reproduce`: does the quick demo's effect survive another machine? `experiment=quick_demo` for every
seed, at 1 and at 2 threads and with oneDNN switched off (`torch.backends.mkldnn.enabled = False`, a
stand-in for another CPU's kernels: other reduction orders, other rounding). The claim, checked on every
run: Kaiming ends at val/acc >= 0.8, without a collapse (no epoch after the warm-up more than 0.2 below
the best before it), and Glorot at <= 0.2 (chance is 0.1).

    python -m template reproduce ['compare.seeds=[0,1,2,3,4]'] [key=value ...]   # exit 1 if any fails

The claim is quick_demo's, Kaiming against Glorot: `experiment` and `compare.inits` are refused.

Each setting is one `make compare` in a fresh process (the thread count and oneDNN must be set before
torch does any work), so its folder, results.json and figures are the ordinary ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from template.errors import UsageError

SETTINGS = {  # name: the lines a fresh process runs before the comparison
    "2 threads": "torch.set_num_threads(2)",
    "1 thread": "torch.set_num_threads(1)",
    "oneDNN off": "torch.set_num_threads(2); torch.backends.mkldnn.enabled = False",
}
KAIMING_AT_LEAST, GLOROT_AT_MOST, LARGEST_DROP = 0.8, 0.2, 0.2


def main(overrides: list[str]) -> int:
    for override in overrides:
        key = override.partition("=")[0].strip()
        if key in ("experiment", "compare.inits"):
            raise UsageError(f"{key}= is set by reproduce (quick_demo, kaiming against glorot); leave it out")
    seeds = next((o.partition("=")[2] for o in overrides if o.startswith("compare.seeds=")), "[0,1,2,3,4]")
    rest = [o for o in overrides if not o.startswith("compare.seeds=")]
    keys = ["experiment=quick_demo", "compare.inits=[kaiming,glorot]", f"compare.seeds={seeds}", *rest]
    rows = []
    for setting, prelude in SETTINGS.items():
        folder = _compare(prelude, keys)
        rows += _rows(setting, folder)
    print("| setting | init | seed | val/acc | largest drop after warm-up | holds |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| {setting} | {init} | {seed} | {acc:.3f} | {drop:.3f} | {holds} |".format(**row))
    failed = [row for row in rows if row["holds"] == "no"]
    print(f"{len(rows) - len(failed)} of {len(rows)} runs hold the claim")
    return 1 if failed else 0


def _compare(prelude: str, arguments: list[str]) -> Path:
    code = f"import sys, torch; {prelude}; from template.compare import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"compare failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("comparison folder: "))
    return Path(line.removeprefix("comparison folder: "))


def _rows(setting: str, folder: Path) -> list[dict]:
    found = json.loads((folder / "results.json").read_text())["results"]
    rows = []
    for init, result in found.items():
        for run in result["runs"]:
            run_dir = folder.parent / run["run_dir"]
            summary = json.loads((run_dir / "summary.json").read_text())
            warmup = OmegaConf.load(run_dir / "config.yaml").scheduler.warmup_epochs  # the rate rises before
            accs = [row["val/acc"] for row in summary["epochs"]]
            drop = max([0.0, *(max(accs[:i]) - accs[i] for i in range(warmup + 1, len(accs)))])
            acc = run["val/acc"]
            holds = (
                acc >= KAIMING_AT_LEAST and drop <= LARGEST_DROP
                if init == "kaiming"
                else acc <= GLOROT_AT_MOST
            )
            rows.append(
                {
                    "setting": setting,
                    "init": init,
                    "seed": run["seed"],
                    "acc": acc,
                    "drop": drop,
                    "holds": "yes" if holds else "no",
                }
            )
    return rows
