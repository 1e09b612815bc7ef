"""The sweep's best configuration trained at full length against the committed recipe it started from.

The sweeps of benchmarks/sweep_benchmark.py search char-gpt-kjv at 200 steps; this takes the best trial over
the given sweep folders, applies only its searched params to the committed recipe (full length, its own
min_lr and evaluation settings) and trains it and the unchanged recipe side by side, one thread each, same seed.

    python benchmarks/sweep_retrain.py --sweeps /tmp/genlab-sweep-benchmark/tpe-median-{0,1,2}
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from genlab.sweep.report import load_sweep
from genlab.sweep.space import format_value


def best_params(folders: list[Path]) -> tuple[dict, float, str]:
    """The params of the lowest-objective complete trial over the sweeps, its value and where it is."""
    best = None
    for folder in folders:
        _, study = load_sweep(folder)
        trial = study.best_trial  # every sweep here minimises val/loss
        if best is None or trial.value < best[1]:
            best = (trial.params, trial.value, f"{folder} trial {trial.number}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweeps", nargs="+", type=Path, required=True, help="sweep folders (genlab sweep --out)")
    parser.add_argument("--recipe", default="char-gpt-kjv")
    parser.add_argument("--work", type=Path, default=Path("/tmp/genlab-sweep-retrain"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sweep")
    args = parser.parse_args()
    params, short_value, source = best_params(args.sweeps)
    searched = [f"{key}={format_value(value)}" for key, value in sorted(params.items())]
    runs = {"committed": [], "sweep-best": searched}
    env = {**os.environ, "GENLAB_THREADS": "1"}
    for name in runs:  # the work folder is this script's own: an earlier, interrupted attempt starts over
        shutil.rmtree(args.work / name, ignore_errors=True)
    jobs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "genlab",
                "train",
                args.recipe,
                *overrides,
                "train.progress=false",
                "--out",
                str(args.work / name),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, overrides in runs.items()
    }
    results = {
        "recipe": args.recipe,
        "best_trial": source,
        "short_budget_objective": short_value,
        "command": f"genlab train {args.recipe} {' '.join(searched)}",
        "runs": {},
    }
    for name, job in jobs.items():
        _, err = job.communicate()
        if job.returncode != 0:
            sys.exit(f"{name} failed: {err.strip().splitlines()[-1] if err.strip() else job.returncode}")
        report = json.loads((args.work / name / "report.json").read_text())
        results["runs"][name] = {
            "overrides": runs[name],
            "val_loss": report["validation"]["loss"],
            "steps": report["cost"]["steps"],
            "train_seconds": report["cost"]["train_seconds"],
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep_retrain.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
