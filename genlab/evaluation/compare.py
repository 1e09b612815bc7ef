"""Compare runs: a Markdown table and a quality-vs-cost plot from one row per run.

The point is to answer "which method/start buys how much quality for how much compute" across runs at a glance.
A task that can be compared turns its run's report.json into a row (see genlab/tasks/finetune/report.py):
run, dataset, start, init, method, metric, quality, chrf, baseline, baseline_name, trainable_parameters,
trainable_fraction, train_seconds, train_flops, peak_rss_mb. No model is loaded.
"""
from __future__ import annotations

import math
from pathlib import Path

METRIC_NAMES = {"macro_f1": "macro-F1", "accuracy": "accuracy", "bleu": "BLEU", "chrf": "chrF"}
_PERCENT_SCALE = {"bleu", "chrf"}  # scored 0-100, so one decimal is enough; the others are 0-1 fractions
MISSING = "–"


def _sort_key(row: dict) -> tuple:
    return row["dataset"], row["method"], row["start"], str(row["init"]), row["run"]


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
        row["run"], row["dataset"], row["start"] + (" (random init)" if row["init"] == "random" else ""), row["method"],
        quality, MISSING if row["baseline"] is None else _score(metric, row["baseline"]), params,
        number("train_seconds", ".1f"), number("train_flops", ".2e"), number("peak_rss_mb", ".0f"),
    ]


def render_table(rows: list[dict]) -> str:
    """A Markdown table sorted by dataset then method, so runs that compete with each other sit next to each other."""
    header = ["run", "dataset", "start", "method", "quality", "baseline", "trainable params", "train time (s)",
              "train FLOPs", "peak memory (MB)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sorted(rows, key=_sort_key):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(row)) + " |")
    return "\n".join(lines) + "\n"


def _marker_area(trainable: float | None) -> float:
    """Area grows with log(trainable parameters): LoRA and full fine-tuning differ 100x, linear would hide one."""
    return 40.0 if trainable is None else 6.0 * max(math.log10(max(trainable, 1)), 1.0) ** 2


def plot(rows: list[dict], path: str | Path) -> Path:
    """Quality against training FLOPs, one panel per dataset (metrics differ between datasets, so axes can't be shared).

    FLOPs, not seconds: runs made on a shared or different machine still compare (the table keeps the seconds).
    Runs without a recorded FLOP count have no x position and are left out of their panel.
    Uses a bare Agg canvas rather than pyplot, so no global figure state or display is involved.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    datasets = sorted({row["dataset"] for row in rows})
    colors = {method: f"C{i}" for i, method in enumerate(sorted({row["method"] for row in rows}))}  # same in each panel
    fig = Figure(figsize=(5 * max(len(datasets), 1), 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(len(datasets), 1), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets):
        group = sorted((r for r in rows if r["dataset"] == dataset), key=_sort_key)
        metric = group[0]["metric"]
        for i, row in enumerate(group):
            if not row["train_flops"]:
                continue
            ax.scatter(row["train_flops"], row["quality"], s=_marker_area(row["trainable_parameters"]),
                       color=colors[row["method"]], alpha=0.7)
            label = row["method"] + (" (random)" if row["init"] == "random" else "")
            # Staggered label heights: methods of similar cost and quality would otherwise print over each other.
            ax.annotate(label, (row["train_flops"], row["quality"]), xytext=(6, 4 - 10 * (i % 3)),
                        textcoords="offset points", fontsize=8)
        baseline = next((r for r in group if r["baseline"] is not None), None)
        if baseline is not None:
            ax.axhline(baseline["baseline"], linestyle="--", color="gray",
                       label=f"baseline: {baseline['baseline_name'] or 'baseline'}")
            ax.legend(fontsize=8)
        ax.margins(0.2)  # room for the labels next to the outermost points
        ax.set_title(dataset)
        flops = [r["train_flops"] for r in group if r["train_flops"]]
        if flops and max(flops) > 5 * min(flops):  # log only where costs span about a decade: below, ticks crowd
            ax.set_xscale("log")
        ax.set_xlabel("train FLOPs")
        ax.set_ylabel(METRIC_NAMES.get(metric, metric))
        ax.grid(alpha=0.3)
    fig.suptitle("quality vs training cost; marker area grows with log(trainable parameters)", fontsize=9)
    fig.savefig(path, dpi=120)
    return Path(path)
