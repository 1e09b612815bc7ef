"""The fine-tuning comparison: every fine-tuning recipe in genlab/recipes/ trained, scored and tabulated.

For each dataset (fortunes, modernize, translate) and method (full, freeze, lora, adapter), plus
modernize from random weights and modernize with seven times the budget: `genlab train RECIPE`,
`genlab eval RUN` (which also scores the dataset's baseline on the same split: TF-IDF + logistic
regression, or copying the source), then
`genlab report` over all of them -> benchmarks/results/finetune/{report.md, quality_vs_cost.png} and
finetune_benchmark.json (the rows, and the issue's targets checked against them).

The seq2seq recipes start from runs/bpe-gpt-bible: train it first (`genlab train bpe-gpt-bible`).
Runs already scored are reused, so an interrupted benchmark continues where it stopped.

    python benchmarks/finetune_benchmark.py                  # about 2.5 hours on 2 CPU cores (after bpe-gpt-bible)
    python benchmarks/finetune_benchmark.py --runs-dir DIR   # where the runs go (default runs/finetune)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from genlab.core.run import RunDir
from genlab.tasks.finetune.report import compare_row

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "finetune"
METHODS = ("full", "freeze", "lora", "adapter")
DATASETS = ("fortunes", "modernize", "translate")
# plus: modernize from random weights (what pretraining buys) and with 7x the budget (what time buys)
RECIPES = [f"{dataset}-{m}" for dataset in DATASETS for m in METHODS] + ["modernize-full-random", "modernize-full-long"]


def genlab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "genlab", *args], cwd=ROOT, check=True)


def scored(run: Path) -> bool:
    report = run / "report.json"
    return report.is_file() and "test" in json.loads(report.read_text())


def collect(runs: list[Path]) -> list[dict]:
    """The `genlab report` row of each run (genlab.tasks.finetune.report)."""
    return [compare_row(RunDir(run)) for run in runs]


def targets(rows: list[dict]) -> dict:
    """The issue's targets, each with the figures it was judged on."""
    by = {(r["dataset"], r["method"], r["init"]): r for r in rows}
    f_full, f_lora = by[("fortunes", "full", "pretrained")], by[("fortunes", "lora", "pretrained")]
    best = max((r for r in rows if r["dataset"] == "fortunes"), key=lambda r: r["quality"])
    m_best = max((r for r in rows if r["dataset"] == "modernize"), key=lambda r: r["quality"])
    m_full = next(r for r in rows if r["run"] == "modernize-full")
    m_random = by[("modernize", "full", "random")]
    return {
        "fortunes_best_beats_tfidf": {
            "best": best["run"],
            "macro_f1": best["quality"],
            "tfidf_macro_f1": best["baseline"],
            "met": best["quality"] > best["baseline"],
        },
        "fortunes_lora_within_0.03_of_full": {
            "lora": f_lora["quality"],
            "full": f_full["quality"],
            "lora_trainable_fraction": f_lora["trainable_fraction"],
            "met": f_full["quality"] - f_lora["quality"] <= 0.03 and f_lora["trainable_fraction"] < 0.02,
        },
        "modernize_beats_copy_by_8_bleu": {
            "best": m_best["run"],
            "bleu": m_best["quality"],
            "copy_bleu": m_best["baseline"],
            "met": m_best["quality"] - m_best["baseline"] >= 8,
        },
        "modernize_pretrained_beats_random": {
            "pretrained": m_full["quality"],
            "random": m_random["quality"],
            "met": m_full["quality"] > m_random["quality"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "finetune")
    args = parser.parse_args()
    runs = [args.runs_dir / name for name in RECIPES]
    for name, run in zip(RECIPES, runs):
        if scored(run):
            continue
        resume = (run / "config.yaml").is_file()
        genlab("train", *(["--resume", str(run)] if resume else [name, "--out", str(run)]))
        genlab("eval", str(run))
    # Paths relative to the repository, so the command recorded in report.md reads the same anywhere.
    genlab("report", *(os.path.relpath(run, ROOT) for run in runs), "--out", os.path.relpath(RESULTS, ROOT))
    rows = collect(runs)
    result = {"runs": rows, "targets": targets(rows)}
    (RESULTS / "finetune_benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    for name, target in result["targets"].items():
        print(f"{name}: {'met' if target['met'] else 'NOT met'} {target}")


if __name__ == "__main__":
    main()
