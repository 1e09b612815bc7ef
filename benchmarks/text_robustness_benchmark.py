"""Text robustness before and after noisy training: fortunes-lora vs fortunes-lora-noisy (the same recipe, the
same budget, half of each batch perturbed), each scored by `genlab eval RUN --protocol noise` on the fortunes
test split at several rates of character edits, keyboard typos and WordNet synonyms.

For each recipe: `genlab train` (resumed if interrupted), `genlab eval` (clean test macro-F1, TF-IDF baseline),
`genlab eval --protocol noise`; then -> benchmarks/results/text_robustness/{text_robustness_benchmark.json,
robustness_curves.png}. Runs already scored are reused, so an interrupted benchmark continues where it stopped.

    GENLAB_THREADS=1 python benchmarks/text_robustness_benchmark.py    # two fortunes-lora trainings
    python benchmarks/text_robustness_benchmark.py --tiny DIR          # seconds: the tiny fine-tuning run's data
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from genlab.core.run import RunDir
from genlab.tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "text_robustness"
RECIPES = ("fortunes-lora", "fortunes-lora-noisy")  # before / after training on noisy texts
RATES = "0,0.05,0.1,0.2,0.3"


def genlab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "genlab", *args], cwd=ROOT, check=True)


def score(recipe: str, run: Path, overrides: list[str], rates: str) -> dict:
    report = RunDir(run).read_report() if (run / "report.json").is_file() else {}
    if "test" not in report:
        resume = (run / "checkpoints" / "last").is_dir()
        genlab("train", *(["--resume", str(run)] if resume else [recipe, *overrides, "--out", str(run)]))
        genlab("eval", str(run))
    if report.get("noise", {}).get("rates") != sorted({float(r) for r in rates.split(",")}):
        genlab("eval", str(run), "--protocol", "noise", "--rates", rates)
    report = RunDir(run).read_report()
    noise, cost = report["noise"], report["cost"]
    where = run.resolve().relative_to(ROOT) if run.resolve().is_relative_to(ROOT) else run
    return {
        "recipe": recipe,
        "run": str(where),
        "clean_test_macro_f1": report["test"]["macro_f1"],
        "tfidf_macro_f1": report["test"]["baseline"]["macro_f1"],
        "train_seconds": cost["train_seconds"],
        "train_flops": cost["train_flops"],
        "steps": cost["steps"],
        "noise": noise,
    }


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4))
    FigureCanvasAgg(figure)
    kinds = list(rows[0]["noise"]["curves"])
    axes = figure.subplots(1, len(kinds), sharey=True, squeeze=False)[0]
    for ax, kind in zip(axes, kinds):
        for row, style in zip(rows, ("o-", "s--")):
            points = row["noise"]["curves"][kind]
            ax.plot([p["rate"] for p in points], [p["macro_f1"] for p in points], style, label=row["recipe"])
        ax.axhline(rows[0]["tfidf_macro_f1"], color="grey", lw=1, ls=":", label="TF-IDF + LR, clean text")
        ax.set_title(f"{kind} noise")
        ax.set_xlabel("rate (fraction of letters or words changed)")
        ax.grid(alpha=0.3)
    noise = rows[0]["noise"]
    axes[0].set_ylabel(f"macro-F1, {Path(noise['dataset']).name} test split ({noise['examples']} texts)")
    axes[0].set_ylim(0, 1)
    axes[-1].legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "text_robustness")
    parser.add_argument("--rates", default=RATES, help="perturbation rates, comma-separated")
    parser.add_argument(
        "--tiny", type=Path, help="smoke mode: the tiny fine-tuning run in this folder, results there too"
    )
    args = parser.parse_args()
    overrides, runs_dir, results = [], args.runs_dir, RESULTS
    if args.tiny:
        overrides = TASKS["finetune"].tiny(args.tiny).overrides
        runs_dir = results = args.tiny
    rows = [score(name, runs_dir / name, overrides, args.rates) for name in RECIPES]
    results.mkdir(parents=True, exist_ok=True)
    plot(rows, results / "robustness_curves.png")
    summary = {
        kind: {row["recipe"]: [round(p["macro_f1"], 4) for p in row["noise"]["curves"][kind]] for row in rows}
        for kind in rows[0]["noise"]["curves"]
    }
    result = {"rates": [float(r) for r in args.rates.split(",")], "macro_f1_by_kind": summary, "runs": rows}
    (results / "text_robustness_benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    for kind, by_recipe in summary.items():
        print(kind, json.dumps(by_recipe))


if __name__ == "__main__":
    main()
