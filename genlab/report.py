"""Compare fine-tuning runs: a Markdown table and a quality-vs-cost plot built from their report.json files.

The point is to answer "which method/start buys how much quality for how much compute" across runs at a glance,
so everything here reads only the small report.json each run already writes; no model is loaded.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from genlab.errors import GenlabError

METRIC_NAMES = {"macro_f1": "macro-F1", "accuracy": "accuracy", "bleu": "BLEU", "chrf": "chrF"}
_PERCENT_SCALE = {"bleu", "chrf"}  # scored 0-100, so one decimal is enough; the others are 0-1 fractions
MISSING = "–"


def collect(run_paths: list[str | Path]) -> list[dict]:
    """One flat row per run, so the table and the plot never have to dig through (possibly partial) reports.

    A run must have its `finetune` and `test` sections; `cost` may be missing in old runs and then reads as None.
    """
    return [_read_run(Path(path)) for path in run_paths]


def _read_run(run: Path) -> dict:
    if not run.is_dir():
        raise GenlabError(f"{run}: no such run folder")
    path = run / "report.json"
    if not path.is_file():
        raise GenlabError(f"{run}: no report.json; is this a run folder?")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GenlabError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(report, dict) or "finetune" not in report:
        raise GenlabError(f"{path}: no 'finetune' section; only fine-tuning runs can be compared")
    if "test" not in report:
        raise GenlabError(f"{run}: no test results yet; run `genlab eval {run}` first")
    finetune, test, cost = report["finetune"], report["test"], report.get("cost") or {}
    metric = test.get("metric")
    if metric not in test:
        raise GenlabError(f"{path}: the 'test' section has no score for its metric {metric!r}")
    baseline = test.get("baseline") or {}
    trainable, total = finetune.get("trainable_parameters"), finetune.get("total_parameters")
    fraction = finetune.get("trainable_fraction")
    if fraction is None and trainable is not None and total:
        fraction = trainable / total
    return {
        "run": run.resolve().name, "task": finetune.get("task", "?"), "method": finetune.get("method", "?"),
        "start": finetune.get("start", "?"), "init": finetune.get("init"),
        "trainable_parameters": trainable, "trainable_fraction": fraction,
        "metric": metric, "quality": test[metric],
        "chrf": test.get("chrf") if metric == "bleu" else None,  # seq2seq: chrF is the second opinion on BLEU
        "baseline": baseline.get(metric), "baseline_name": baseline.get("name"),
        "train_seconds": cost.get("train_seconds"), "train_flops": cost.get("train_flops"),
        "peak_rss_mb": cost.get("peak_rss_mb"),
    }


def _sort_key(row: dict) -> tuple:
    return row["task"], row["method"], row["start"], str(row["init"]), row["run"]


def _score(metric: str, value: float) -> str:
    return f"{value:.1f}" if metric in _PERCENT_SCALE else f"{value:.3f}"


def _count(n: float) -> str:
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f}"


def _cells(row: dict) -> list[str]:
    metric = row["metric"]
    quality = f"{METRIC_NAMES.get(metric, metric)} {_score(metric, row['quality'])}"
    if row["chrf"] is not None:
        quality += f", chrF {_score('chrf', row['chrf'])}"
    params = MISSING
    if row["trainable_parameters"] is not None:
        params = _count(row["trainable_parameters"])
        if row["trainable_fraction"] is not None:
            params += f" ({100 * row['trainable_fraction']:.2f} %)"

    def number(key: str, spec: str) -> str:
        return MISSING if row[key] is None else format(row[key], spec)

    return [
        row["run"], row["task"], row["start"] + (" (random init)" if row["init"] == "random" else ""), row["method"],
        quality, MISSING if row["baseline"] is None else _score(metric, row["baseline"]), params,
        number("train_seconds", ".1f"), number("train_flops", ".2e"), number("peak_rss_mb", ".0f"),
    ]


def render_table(rows: list[dict]) -> str:
    """A Markdown table sorted by task then method, so runs that compete with each other sit next to each other."""
    header = ["run", "task", "start", "method", "quality", "baseline", "trainable params", "train time (s)",
              "train FLOPs", "peak memory (MB)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sorted(rows, key=_sort_key):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(row)) + " |")
    return "\n".join(lines) + "\n"


def _marker_area(trainable: float | None) -> float:
    """Area grows with log(trainable parameters): LoRA and full fine-tuning differ 100x, linear would hide one."""
    return 40.0 if trainable is None else 6.0 * max(math.log10(max(trainable, 1)), 1.0) ** 2


def plot(rows: list[dict], path: str | Path) -> Path:
    """Quality against training FLOPs, one panel per task (metrics differ between tasks, so axes can't be shared).

    FLOPs, not seconds: runs made on a shared or different machine still compare (the table keeps the seconds).
    Runs without a recorded FLOP count have no x position and are left out of their panel.
    Uses a bare Agg canvas rather than pyplot, so no global figure state or display is involved.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = sorted({row["task"] for row in rows})
    colors = {method: f"C{i}" for i, method in enumerate(sorted({row["method"] for row in rows}))}  # same in each panel
    fig = Figure(figsize=(5 * max(len(tasks), 1), 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(len(tasks), 1), squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        task_rows = sorted((r for r in rows if r["task"] == task), key=_sort_key)
        metric = task_rows[0]["metric"]
        for i, row in enumerate(task_rows):
            if not row["train_flops"]:
                continue
            ax.scatter(row["train_flops"], row["quality"], s=_marker_area(row["trainable_parameters"]),
                       color=colors[row["method"]], alpha=0.7)
            label = row["method"] + (" (random)" if row["init"] == "random" else "")
            # Staggered label heights: methods of similar cost and quality would otherwise print over each other.
            ax.annotate(label, (row["train_flops"], row["quality"]), xytext=(6, 4 - 10 * (i % 3)),
                        textcoords="offset points", fontsize=8)
        baseline = next((r for r in task_rows if r["baseline"] is not None), None)
        if baseline is not None:
            ax.axhline(baseline["baseline"], linestyle="--", color="gray",
                       label=f"baseline: {baseline['baseline_name'] or 'baseline'}")
            ax.legend(fontsize=8)
        ax.margins(0.2)  # room for the labels next to the outermost points
        ax.set_title(task)
        flops = [r["train_flops"] for r in task_rows if r["train_flops"]]
        if flops and max(flops) > 5 * min(flops):  # log only where costs span about a decade: below, ticks crowd
            ax.set_xscale("log")
        ax.set_xlabel("train FLOPs")
        ax.set_ylabel(METRIC_NAMES.get(metric, metric))
        ax.grid(alpha=0.3)
    fig.suptitle("quality vs training cost; marker area grows with log(trainable parameters)", fontsize=9)
    fig.savefig(path, dpi=120)
    return Path(path)
