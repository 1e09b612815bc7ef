"""Time to quality: wall seconds of the whole `genlab train` until the validation loss first reaches 1.462,
the loss genlab/recipes/char-gpt-kjv.yaml reaches after its 2,000 steps (docs/text.md), for that reference recipe
and genlab/recipes/char-gpt-kjv-modern.yaml (rotary, RMSNorm, ..., Muon). Writes results.json and loss_vs_time.png.

The CPU may be shared with other jobs, so every run of every seed runs *side by side* (all processes at
once, one thread each): all see the same background load and the ratio stays honest where the absolute
seconds do not. Every run goes through a small wrapper that also times, inside the process, the training
steps, the periodic evaluations (validation loss, text sample, Hugging Face export), the data preparation
and the imports: wall time minus training steps is the command's overhead.

`--ablate` trains the modern recipe once with each of its options turned back to the reference's (same
seed, side by side in pairs) and records the validation loss and the wall time to the target.

    GENLAB_THREADS=1 nice -n 5 python benchmarks/speedrun.py --seeds 0 1 2
    GENLAB_THREADS=1 nice -n 5 python benchmarks/speedrun.py --beside --seeds 0 1 2 3 4 5
    GENLAB_THREADS=1 nice -n 5 python benchmarks/speedrun.py --ablate --seeds 0
    GENLAB_THREADS=1 nice -n 5 python benchmarks/speedrun.py --ablate --ablate-steps 100 --parallel 3 --seeds 0
    GENLAB_THREADS=2 python benchmarks/speedrun.py --overhead --seeds 0      # idle machine: the command's overhead
    python benchmarks/speedrun.py --eval-error    # after the runs above: what fewer validation windows cost
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.462
RECIPES = {"reference": "char-gpt-kjv", "modern": "char-gpt-kjv-modern"}
# One option of the modern recipe turned back to the reference's, per ablation run.
ABLATIONS = {
    "adamw instead of muon": ["train.optimizer=adamw"],
    "learned positions": ["model.positions=learned"],
    "layernorm": ["model.norm=layernorm"],
    "no qk_norm": ["model.qk_norm=false"],
    "gelu mlp": ["model.activation=gelu_new", "model.n_inner=0"],
    "tied head": ["model.tie_head=true"],
    "no zero_init": ["model.zero_init=false"],
    "no soft-cap": ["model.logit_softcap=0"],
}

# Runs `genlab train ARGS` in this process and writes what each part of it took to the JSON file in argv[1].
WRAPPER = r"""
import json, sys, time
start = time.perf_counter()
from genlab.cli import main
from genlab.tasks.lm import training as lm
imported = time.perf_counter() - start
spent = {"train_steps": 0.0, "first_step": None, "end_period": 0.0, "prepare_tokens": 0.0}

def timed(owner, name, key):
    inner = getattr(owner, name)
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - t
            if key == "train_steps" and spent["first_step"] is None:
                spent["first_step"] = time.perf_counter() - t  # includes the trainer's one FLOP count
    setattr(owner, name, wrapper)

timed(lm.LMTraining, "train_step", "train_steps")
timed(lm.LMTraining, "end_period", "end_period")
timed(lm, "prepare_tokens", "prepare_tokens")
code = main(["train", *sys.argv[2:]])
spent.update(imports=imported, in_process=time.perf_counter() - start, exit_code=code)
open(sys.argv[1], "w").write(json.dumps(spent))
"""


def launch(recipe: str, out: Path, overrides: list[str]) -> tuple[subprocess.Popen, float]:
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-c",
        WRAPPER,
        str(out) + ".timing.json",
        recipe,
        "--out",
        str(out),
        "train.progress=false",
        *overrides,
    ]
    env = {**os.environ, "GENLAB_THREADS": os.environ.get("GENLAB_THREADS", "1")}
    log = open(str(out) + ".log", "w")
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), time.perf_counter()


def watch(runs: dict[str, tuple[subprocess.Popen, float, Path]], refill=None) -> dict[str, dict]:
    """Poll each run's metrics.jsonl until every process ends: (wall seconds, step, val loss) per evaluation.
    `refill(runs, ended)`, called at every poll, may add runs."""
    curves: dict[str, list] = {}
    ended: dict[str, float] = {}
    while True:
        if refill is not None:
            refill(runs, ended)
        if len(ended) == len(runs):
            break
        for name, (proc, started, out) in list(runs.items()):
            curves.setdefault(name, [])
            lines = (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").is_file() else []
            evals = [json.loads(line) for line in lines if '"val/loss"' in line]
            now = time.perf_counter() - started
            for row in evals[len(curves[name]) :]:  # first seen now: within the 50 ms poll of its writing
                curves[name].append([round(now, 2), row["step"], row["val/loss"]])
            if name not in ended and proc.poll() is not None:
                ended[name] = now
        time.sleep(0.05)
    results = {}
    for name, (proc, _, out) in runs.items():
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed (exit {proc.returncode}): see {out}.log")
        timing = json.loads(Path(str(out) + ".timing.json").read_text())
        reached = next((c for c in curves[name] if c[2] <= TARGET), None)
        wall = ended[name]
        results[name] = {
            "curve": curves[name],
            "wall_seconds": round(wall, 2),
            "started": round(runs[name][1], 2),
            "seconds_to_target": reached[0] if reached else None,
            "step_at_target": reached[1] if reached else None,
            "final_val_loss": curves[name][-1][2],
            "train_step_seconds": round(timing["train_steps"], 2),
            "overhead_seconds": round(wall - timing["train_steps"], 2),
            "overhead_fraction": round(1 - timing["train_steps"] / wall, 3),
            "overhead_parts": {
                k: round(timing[k], 2) for k in ("imports", "prepare_tokens", "end_period", "first_step")
            },
            **ledger(out),
        }
    return results


def ledger(out: Path) -> dict:
    """The run's FLOP count from its cost ledger (report.json): the trainer counts one step of each kind."""
    cost = json.loads((out / "report.json").read_text())["cost"]
    return {
        "train_flops": cost["train_flops"],
        "flops_per_step": cost["train_flops"] // cost["steps"],
        "steps": cost["steps"],
    }


def plot(seeds: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"reference": "tab:blue", "modern": "tab:orange"}
    labelled = set()
    for runs in seeds.values():
        for name, r in runs.items():
            xs, ys = [c[0] for c in r["curve"]], [c[2] for c in r["curve"]]
            ax.plot(
                xs,
                ys,
                "o-",
                color=colors[name],
                alpha=0.8,
                ms=3,
                label=None if name in labelled else f"{name} ({RECIPES[name]})",
            )
            labelled.add(name)
    ax.axhline(TARGET, color="gray", ls="--", lw=1, label=f"target {TARGET}")
    ax.set_xlabel("wall seconds of `genlab train` (side by side on a shared 2-core CPU)")
    ax.set_ylabel("validation loss (nats/char)")
    ax.set_ylim(1.3, 2.6)
    ax.set_title(f"char GPT on the KJV: time to validation loss {TARGET}, {len(seeds)} seed(s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def runs_end(r: dict) -> float:
    """When a run ended, in seconds since the script's clock started (perf_counter)."""
    return r["started"] + r["wall_seconds"]


def beside(args: argparse.Namespace, command: str) -> None:
    """The reference once, and the modern recipe back to back beside it for as long as it runs (next seed each
    time): two processes all along, so both recipes see the same load on average even when it changes."""
    seeds = iter(args.seeds)
    ref = "reference/" + str(args.seeds[0])
    runs = {
        ref: (
            *launch(RECIPES["reference"], args.runs / "beside-reference", [f"seed={args.seeds[0]}"]),
            args.runs / "beside-reference",
        )
    }

    def refill(runs: dict, ended: dict) -> None:
        if ref in ended or any(k not in ended for k in runs if k.startswith("modern/")):
            return
        seed = next(seeds, None)
        if seed is not None:
            out = args.runs / f"beside-modern-{seed}"
            runs[f"modern/{seed}"] = (*launch(RECIPES["modern"], out, [f"seed={seed}"]), out)

    results = watch(runs, refill)
    summarize_beside(results, ref, command, args.out)


def summarize_beside(results: dict, ref: str, command: str, out: Path) -> None:
    """Only modern runs that ended before the reference did ran beside it all along: the ratio uses those."""
    ref_end = runs_end(results[ref])
    moderns = {k: r for k, r in results.items() if k.startswith("modern/") and runs_end(r) <= ref_end}
    reached = [r["seconds_to_target"] for r in moderns.values() if r["seconds_to_target"] is not None]
    ref_time = results[ref]["curve"][-1][0]
    result = {
        "command": command,
        "target": TARGET,
        "recipes": RECIPES,
        "reference_seconds_to_its_last_evaluation": ref_time,
        "modern_runs_beside_the_reference": sorted(moderns),
        "modern_runs_reaching_target": f"{len(reached)} of {len(moderns)}",
        "ratio_mean_modern_to_reference": round(sum(reached) / len(reached) / ref_time, 3) if reached else None,
        "runs": results,
    }
    (out / "beside.json").write_text(json.dumps(result, indent=2))
    plot(
        {0: {"reference": results[ref]}} | {i + 1: {"modern": r} for i, r in enumerate(moderns.values())},
        out / "beside_loss_vs_time.png",
    )
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


def plot_overhead(result: dict, path: Path) -> None:
    """One bar per setting: the wall time of the command split into its parts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.8))
    parts = ("training steps", "evaluations", "imports", "data", "the rest")
    colors = ("tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:gray")
    for i, (_name, run) in enumerate(result["runs"].items()):
        o = run["overhead_parts"]
        rest = run["overhead_seconds"] - o["imports"] - o["prepare_tokens"] - o["end_period"]
        left = 0.0
        for part, color, seconds in zip(
            parts, colors, (run["train_step_seconds"], o["end_period"], o["imports"], o["prepare_tokens"], rest)
        ):
            ax.barh(i, seconds, left=left, color=color, label=part if i == 0 else None)
            left += seconds
        ax.text(left, i, f"  overhead {run['overhead_fraction']:.1%}", va="center", fontsize=8)
    ax.set_yticks(range(len(result["runs"])), list(result["runs"]), fontsize=8)
    ax.set_xlabel(f"wall seconds of `genlab train {result['recipe']}`")
    ax.set_xlim(0, 1.2 * max(r["wall_seconds"] for r in result["runs"].values()))
    ax.legend(ncol=5, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 1.3))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def overhead(args: argparse.Namespace, command: str) -> None:
    """The reference recipe at its defaults, then with the variant's overrides, alone (not side by side:
    an idle machine is the point), each command timed from start to exit."""
    result = {"command": command, "recipe": RECIPES["reference"], "runs": {}}
    for name, overrides in (("defaults", []), (" ".join(args.overhead_variant), args.overhead_variant)):
        out = args.runs / f"overhead-{len(result['runs'])}"
        proc, started = launch(RECIPES["reference"], out, [f"seed={args.seeds[0]}", *overrides])
        run = watch({name: (proc, started, out)})[name]
        result["runs"][name] = {
            k: run[k]
            for k in (
                "wall_seconds",
                "train_step_seconds",
                "overhead_seconds",
                "overhead_fraction",
                "overhead_parts",
                "final_val_loss",
            )
        }
        print(name, json.dumps(result["runs"][name]), flush=True)
    (args.out / "overhead.json").write_text(json.dumps(result, indent=2))
    plot_overhead(result, args.out / "overhead.png")


def eval_error(args: argparse.Namespace, command: str) -> None:
    """What fewer validation windows cost in accuracy: for every trained run under --runs, the validation
    loss over the whole split (every non-overlapping window) against the recipe's estimate at several
    `eval.eval_iters` (batches of the recipe's batch size, windows spread evenly, the same every time)."""
    import numpy as np
    import torch

    import genlab
    from genlab.data.tokens import open_tokens, windows
    from genlab.tasks.lm.training import estimate_loss, lm_loss

    iters = (100, 50, 40, 30, 25)
    rows = []
    for folder in sorted(p for p in args.runs.iterdir() if (p / "checkpoints" / "last").is_dir()):
        run = genlab.load(folder)
        model, tokenizer, batch = run.model, run.tokenizer, run.recipe.data.batch_size
        tokens = open_tokens(folder / "validation.bin", tokenizer.vocab_size)
        block = model.config.block_size
        starts = torch.arange(0, len(tokens) - block, block)
        with torch.inference_mode():
            total = sum(lm_loss(model, windows(tokens, s, block), None).item() * len(s) for s in starts.split(256))
        full = total / len(starts)
        errors = {
            str(k): round(estimate_loss(model, tokenizer, tokens, batch, k, torch.device("cpu")) - full, 4)
            for k in iters
        }
        rows.append({"run": folder.name, "windows": len(starts), "full_split_loss": round(full, 4), **errors})
        print(json.dumps(rows[-1]), flush=True)
    # Runs of the same recipe and seed hold the same model (the overhead and speedrun runs): count each once.
    distinct = list({tuple(v for k, v in r.items() if k != "run"): r for r in rows}.values())
    summary = {
        str(k): {
            "max_abs_error": float(np.abs([r[str(k)] for r in distinct]).max()),
            "rms_error": round(float(np.sqrt(np.mean([r[str(k)] ** 2 for r in distinct]))), 4),
        }
        for k in iters
    }
    result = {
        "command": command,
        "what": "estimate - full-split validation loss, per eval.eval_iters",
        "distinct_models": len(distinct),
        "summary": summary,
        "runs": rows,
    }
    (args.out / "eval_error.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(summary, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ablate", action="store_true", help="ablate the modern recipe's options instead")
    parser.add_argument(
        "--ablate-steps",
        type=int,
        default=0,
        help="train each ablation run this many steps (its own schedule), not the recipe's",
    )
    parser.add_argument("--parallel", type=int, default=2, help="ablation runs side by side")
    parser.add_argument(
        "--beside",
        action="store_true",
        help="one reference run (first seed) with modern runs back to back beside it, one per seed",
    )
    parser.add_argument(
        "--overhead",
        action="store_true",
        help="the reference recipe alone, at its defaults and with each --overhead-variant, one "
        "after the other: where the command's time goes besides the training steps",
    )
    parser.add_argument(
        "--overhead-variant", nargs="+", default=["eval.eval_iters=40"], help="overrides of the second --overhead run"
    )
    parser.add_argument(
        "--eval-error",
        action="store_true",
        help="for every trained run under --runs: the validation estimate at several "
        "eval.eval_iters against the loss over the whole validation split",
    )
    parser.add_argument("--runs", type=Path, default=Path("/tmp/genlab-speedrun"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "speedrun")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    threads = os.environ.get("GENLAB_THREADS", "1")
    command = f"GENLAB_THREADS={threads} python benchmarks/speedrun.py " + " ".join(sys.argv[1:])
    if args.ablate:
        table = {}
        jobs = [("modern recipe", [])] + list(ABLATIONS.items())
        n = args.ablate_steps
        short = (
            [
                f"train.max_iters={n}",
                f"train.eval_interval={n}",
                f"train.warmup_iters={min(20, n // 5)}",
                "eval.eval_iters=25",
            ]
            if n
            else []
        )
        for seed in args.seeds:
            for i in range(0, len(jobs), args.parallel):  # side by side
                runs = {}
                for name, overrides in jobs[i : i + args.parallel]:
                    out = args.runs / f"ablate{n or ''}-{seed}-{name.replace(' ', '_')}"
                    proc, started = launch(RECIPES["modern"], out, [f"seed={seed}", *short, *overrides])
                    runs[name] = (proc, started, out)
                for name, r in watch(runs).items():
                    table.setdefault(name, {})[seed] = {
                        k: r[k]
                        for k in (
                            "final_val_loss",
                            "seconds_to_target",
                            "step_at_target",
                            "wall_seconds",
                            "train_step_seconds",
                            "curve",
                        )
                    }
                    print(name, seed, table[name][seed], flush=True)
                result = {
                    "command": command,
                    "target": TARGET,
                    "steps": n or "the recipe's",
                    "overrides": ABLATIONS,
                    "short_run_overrides": short,
                    "runs": table,
                }
                file = f"ablation_{n}_steps.json" if n else "ablation.json"
                (args.out / file).write_text(json.dumps(result, indent=2))  # after every group
        return
    if args.beside:
        beside(args, command)
        return
    if args.overhead:
        overhead(args, command)
        return
    if args.eval_error:
        eval_error(args, command)
        return
    # Every seed's pair at once: all runs see the same background load.
    runs = {}
    for seed in args.seeds:
        for name, recipe in RECIPES.items():
            out = args.runs / f"{name}-{seed}"
            proc, started = launch(recipe, out, [f"seed={seed}"])
            runs[f"{name}/{seed}"] = (proc, started, out)
    seeds: dict[int, dict] = {}
    for key, r in watch(runs).items():
        name, seed = key.split("/")
        seeds.setdefault(int(seed), {})[name] = r
    # The reference recipe *defines* the target (its loss after its 2,000 steps), so its time to the target is
    # the wall time of its last evaluation, whether that seed lands a little above or below 1.462.
    ratios = [
        s["modern"]["seconds_to_target"] / s["reference"]["curve"][-1][0]
        for s in seeds.values()
        if s["modern"]["seconds_to_target"] is not None
    ]
    result = {
        "command": command,
        "target": TARGET,
        "recipes": RECIPES,
        "ratio_modern_to_reference": [round(r, 3) for r in ratios],
        "ratio_mean": round(sum(ratios) / len(ratios), 3) if ratios else None,
        "seeds": seeds,
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    plot(seeds, args.out / "loss_vs_time.png")
    print(json.dumps({k: v for k, v in result.items() if k != "seeds"}, indent=2))


if __name__ == "__main__":
    main()
