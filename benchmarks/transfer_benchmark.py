"""Transfer: what a pretrained start buys on a downstream task, at an equal fine-tuning budget, per unit of cost.

Each start — random weights (in the Bible GPT's shape and in MiniLM's), the genlab Bible GPT
(runs/bpe-gpt-bible, genlab/recipes/bpe-gpt-bible.yaml) and MiniLM (all-MiniLM-L6-v2) — fine-tuned by the same
recipe (full fine-tuning, the same steps over the same seeded subset, the same hyperparameters) on each task: fortunes
classification (genlab/recipes/fortunes-full.yaml, test macro-F1) and modernize seq2seq
(genlab/recipes/modernize-full.yaml, test BLEU). MiniLM is a bidirectional encoder: it has no next-token head to
generate with, so the modernize cell is "not applicable" (the finetune task refuses an encoder start for seq2seq).

The gain of pretraining is quality(start) - quality(random weights of the same shape); its cost is the
pretraining FLOPs (the Bible GPT's ledger; for MiniLM an estimate from its model card, not measured here) plus
the fine-tuning FLOPs (each run's ledger). -> benchmarks/results/transfer/{transfer_benchmark.json, transfer.md,
transfer.png}. Finished cells are kept in the JSON and their runs reused, so an interrupted benchmark continues.

    GENLAB_THREADS=1 python benchmarks/transfer_benchmark.py                  # after `genlab train bpe-gpt-bible`
    python benchmarks/transfer_benchmark.py --limit 32 --eval-limit 8 --out DIR   # smoke
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from genlab.core.run import RunDir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "transfer"
BIBLE_GPT = "runs/bpe-gpt-bible"
# start name -> (run folder suffix, recipe `start`, `init`, the random start of the same shape)
STARTS = {
    "random (GPT shape)": ("random-gpt", BIBLE_GPT, "random", None),
    "Bible GPT": ("bible-gpt", BIBLE_GPT, "pretrained", "random (GPT shape)"),
    "random (MiniLM shape)": ("random-minilm", "minilm", "random", None),
    "MiniLM": ("minilm", "minilm", "pretrained", "random (MiniLM shape)"),
}
TASKS = {"fortunes": ("fortunes-full", "macro_f1"), "modernize": ("modernize-full", "bleu")}
NOT_APPLICABLE = {
    ("modernize", "MiniLM"): "MiniLM is a bidirectional encoder: no causal next-token head to generate with",
    ("modernize", "random (MiniLM shape)"): "the same encoder shape: cannot generate either",
}
# all-MiniLM-L6-v2's model card: 100k steps x 1024 sentence pairs, sequences cut at 128 tokens, 22.7M parameters:
# 6 * N * tokens = 6 * 22.7e6 * (1e5 * 1024 * 2 * 128) FLOPs at most for that stage; MiniLM's own distillation
# from a larger teacher (before it) is not counted. An order of magnitude, not a measurement.
MINILM_PRETRAIN_FLOPS_ESTIMATE = 6 * 22.7e6 * 1e5 * 1024 * 2 * 128


def genlab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "genlab", *args], cwd=ROOT, check=True)


def pretraining_flops(start: str, init: str) -> tuple[float, str]:
    if init == "random":
        return 0.0, "none"
    if start == "minilm":
        return MINILM_PRETRAIN_FLOPS_ESTIMATE, "estimate from the model card"
    return float(RunDir(ROOT / start).read_report()["cost"]["train_flops"]), f"{start}/report.json ledger"


def run_cell(task: str, start_name: str, runs_dir: Path, overrides: list[str]) -> dict:
    recipe, metric = TASKS[task]
    slug, start, init, _ = STARTS[start_name]
    run = runs_dir / f"{task}-{slug}"
    report = RunDir(run).read_report() if (run / "report.json").is_file() else {}
    if "test" not in report:
        resume = (run / "checkpoints" / "last").is_dir()
        genlab(
            "train",
            *(
                ["--resume", str(run)]
                if resume
                else [recipe, f"start={start}", f"init={init}", *overrides, "--out", str(run)]
            ),
        )
        genlab("eval", str(run))
        report = RunDir(run).read_report()
    flops, source = pretraining_flops(start, init)
    test, cost = report["test"], report["cost"]
    return {
        "task": task,
        "start": start_name,
        "run": str(run.relative_to(ROOT) if run.is_relative_to(ROOT) else run),
        "metric": metric,
        "quality": test[metric],
        "baseline": test["baseline"].get(metric),
        "baseline_name": test["baseline"]["name"],
        "finetune_flops": cost["train_flops"],
        "finetune_seconds": cost["train_seconds"],
        "steps": cost["steps"],
        "pretrain_flops": flops,
        "pretrain_flops_source": source,
    }


def gains(cells: dict[str, dict]) -> None:
    """Each pretrained cell's gain over random weights of its shape, and the gain per PFLOP of total cost."""
    for cell in cells.values():
        if "quality" not in cell:
            continue
        random_name = STARTS[cell["start"]][3]
        random_cell = cells.get(f"{cell['task']}/{random_name}") if random_name else None
        if random_cell and "quality" in random_cell:
            cell["gain_over_random"] = cell["quality"] - random_cell["quality"]
            cell["total_flops"] = cell["pretrain_flops"] + cell["finetune_flops"]
            cell["gain_per_pflop"] = cell["gain_over_random"] / (cell["total_flops"] / 1e15)
            cell["gain_per_finetune_pflop"] = cell["gain_over_random"] / (cell["finetune_flops"] / 1e15)


def table(cells: dict[str, dict], budget: str) -> str:
    lines = [
        f"Budget per cell: {budget}.",
        "",
        "| task | start | quality | gain over random | pretraining FLOPs | fine-tuning FLOPs | gain per PFLOP "
        "(pretraining + fine-tuning) | gain per fine-tuning PFLOP |",
        "|" + " --- |" * 8,
    ]
    for cell in cells.values():
        if "quality" not in cell:
            why = f"n/a: {cell['not_applicable']}" if "not_applicable" in cell else f"not run: {cell['pending']}"
            lines.append(f"| {cell['task']} | {cell['start']} | {why} | | | | | |")
            continue
        quality = f"macro-F1 {cell['quality']:.3f}" if cell["metric"] == "macro_f1" else f"BLEU {cell['quality']:.2f}"
        gain = cell.get("gain_over_random")
        per = (
            ["", "", ""]
            if gain is None
            else [f"{gain:+.3f}", f"{cell['gain_per_pflop']:.3g}", f"{cell['gain_per_finetune_pflop']:.3g}"]
        )
        lines.append(
            f"| {cell['task']} | {cell['start']} | {quality} | {per[0]} | {cell['pretrain_flops']:.2e} | "
            f"{cell['finetune_flops']:.2e} | {per[1]} | {per[2]} |"
        )
    return "\n".join(lines) + "\n"


def plot(cells: dict[str, dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.8))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(TASKS))
    for ax, task in zip(axes, TASKS):
        done = [c for c in cells.values() if c["task"] == task and "quality" in c]
        if not done:
            ax.text(
                0.5,
                0.5,
                "no cell of this task has run yet\n(see transfer.md)",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        bars = ax.bar(range(len(done)), [c["quality"] for c in done], color="tab:blue")
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_xticks(range(len(done)), [c["start"].replace(" (", "\n(") for c in done], fontsize=8)
        if done and done[0]["baseline"] is not None:
            ax.axhline(done[0]["baseline"], color="grey", ls=":", label=done[0]["baseline_name"])
            ax.legend(fontsize=8)
        ax.set_title(f"{task}: test {'macro-F1' if TASKS[task][1] == 'macro_f1' else 'BLEU'}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "transfer")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--limit", type=int, default=2000, help="training examples per cell (one epoch)")
    parser.add_argument("--eval-limit", type=int, default=200, help="modernize test pairs scored (BLEU)")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: fortunes, modernize")
    parser.add_argument("--starts", default=",".join(STARTS), help="comma-separated start names")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "transfer_benchmark.json"
    budget = f"full fine-tuning, 1 epoch over a seeded {args.limit}-example subset, batch 16, the recipe's lr"
    previous = json.loads(saved.read_text()) if saved.is_file() else {}
    cells = previous.get("cells", {}) if previous.get("budget") == budget else {}
    for task in args.tasks.split(","):
        for start_name in args.starts.split(","):
            key = f"{task}/{start_name}"
            if key in cells and "pending" not in cells[key]:
                continue
            if (task, start_name) in NOT_APPLICABLE:
                cells[key] = {"task": task, "start": start_name, "not_applicable": NOT_APPLICABLE[(task, start_name)]}
                continue
            start = STARTS[start_name][1]
            if start != "minilm" and not (ROOT / start / "checkpoints" / "last").is_dir():
                cells[key] = {
                    "task": task,
                    "start": start_name,
                    "pending": f"{start} has no checkpoint yet: `genlab train bpe-gpt-bible --out {start}`, "
                    "then run this script again",
                }
                continue
            overrides = [f"data.limit={args.limit}"] + (
                [f"data.eval_limit={args.eval_limit}"] if task == "modernize" else []
            )
            cells[key] = run_cell(task, start_name, args.runs_dir, overrides)
            gains(cells)
            saved.write_text(json.dumps({"budget": budget, "cells": cells}, indent=2) + "\n")  # resumable
    gains(cells)
    ordered = {f"{t}/{s}": cells[f"{t}/{s}"] for t in TASKS for s in STARTS if f"{t}/{s}" in cells}
    saved.write_text(
        json.dumps(
            {
                "budget": budget,
                "minilm_pretrain_flops_note": "estimate: 6*N*tokens of the "
                "model card's sentence-embedding stage; not from a ledger",
                "cells": ordered,
            },
            indent=2,
        )
        + "\n"
    )
    (args.out / "transfer.md").write_text(table(ordered, budget))
    plot(ordered, args.out / "transfer.png")
    print(table(ordered, budget))


if __name__ == "__main__":
    main()
