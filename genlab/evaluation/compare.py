"""Compare runs: a Markdown table and a quality-vs-cost plot from one row per run.

The point is to answer "which method/start buys how much quality for how much compute" across runs at a glance.
Every task turns its evaluated run's report.json into a row (`Task.compare_row`, e.g. genlab/tasks/gan/report.py):
`row()` below fills what every run has (its name and cost ledger), the task the rest — dataset, method, metric,
quality, details (a second opinion, e.g. chrF beside BLEU), baseline, baseline_name, start, init. No model is loaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from genlab.core.run import RunDir
from genlab.errors import GenlabError
from genlab.io.files import atomic_write

METRIC_NAMES = {
    "macro_f1": "macro-F1",
    "accuracy": "accuracy",
    "bleu": "BLEU",
    "chrf": "chrF",
    "fid": "FID",
    "loss": "test loss",
    "frechet_distance": "Fréchet distance",
    "robust_accuracy": "PGD accuracy",
}
LOWER_IS_BETTER = {"fid", "loss", "frechet_distance", "nll_per_note", "nll_per_token", "mcd_db"}  # the others: higher
_SCORE_FORMAT = {"bleu": ".1f", "chrf": ".1f", "fid": ".2f", "frechet_distance": ".2f"}  # the rest: 0-1 or nats
MISSING = "–"


def evaluated(run: RunDir, section: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(report, report[section]) of a run `genlab eval` has scored; otherwise one line saying to run it."""
    report = run.read_report()
    return report, scored(run, report, section)


def scored(run: RunDir, report: dict[str, Any], section: str) -> dict[str, Any]:
    """report[section], the part of a run's report that `genlab eval` writes, or one line asking for it."""
    if not isinstance(report.get(section), dict):
        raise GenlabError(f"{run.path}: no {section} results yet; run `genlab eval {run.path}` first")
    return report[section]


def row(run: RunDir, report: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A table row: the task's `fields` over what every run has — its name and its cost ledger.

    Trained parameters default to the ledger's count without exponential-moving-average copies (not trained).
    """
    cost = report.get("cost") or {}
    counts = cost.get("parameters") or {}
    trained = sum(n for name, n in counts.items() if not name.endswith("_ema")) or None
    return {
        "run": run.path.resolve().name,
        "start": "scratch",
        "init": None,
        "details": None,
        "baseline": None,
        "baseline_name": None,
        "trainable_parameters": trained,
        "trainable_fraction": None,
        "train_seconds": cost.get("train_seconds"),
        "train_flops": cost.get("train_flops"),
        "peak_rss_mb": cost.get("peak_rss_mb"),
        **fields,
    }


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric) + (" ↓" if metric in LOWER_IS_BETTER else "")


def _sort_key(row: dict) -> tuple:
    return row["dataset"], row["method"], row["start"], str(row["init"]), row["run"]


def _score(metric: str, value: float) -> str:
    return format(value, _SCORE_FORMAT.get(metric, ".3f"))


def _count(n: float) -> str:
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f}"


def _cells(row: dict) -> list[str]:
    metric = row["metric"]
    quality = f"{metric_name(metric)} {_score(metric, row['quality'])}"
    if row["details"]:
        quality += f", {row['details']}"
    params = MISSING
    if row["trainable_parameters"] is not None:
        params = _count(row["trainable_parameters"])
        if row["trainable_fraction"] is not None:
            params += f" ({100 * row['trainable_fraction']:.2f} %)"

    def number(key: str, spec: str) -> str:
        return MISSING if row[key] is None else format(row[key], spec)

    return [
        row["run"],
        row["dataset"],
        row["start"] + (" (random init)" if row["init"] == "random" else ""),
        row["method"],
        quality,
        MISSING if row["baseline"] is None else _score(metric, row["baseline"]),
        params,
        number("train_seconds", ".1f"),
        number("train_flops", ".2e"),
        number("peak_rss_mb", ".0f"),
    ]


def render_table(rows: list[dict]) -> str:
    """A Markdown table sorted by dataset then method, so runs that compete with each other sit next to each other."""
    header = [
        "run",
        "dataset",
        "start",
        "method",
        "quality",
        "baseline",
        "trainable params",
        "train time (s)",
        "train FLOPs",
        "peak memory (MB)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in sorted(rows, key=_sort_key):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(row)) + " |")
    if any(row["metric"] in LOWER_IS_BETTER for row in rows):
        lines += ["", "↓: lower is better."]
    return "\n".join(lines) + "\n"


def _marker_area(trainable: float | None) -> float:
    """Area grows with log(trainable parameters): LoRA and full fine-tuning differ 100x, linear would hide one."""
    return 40.0 if trainable is None else 6.0 * max(math.log10(max(trainable, 1)), 1.0) ** 2


def plot(rows: list[dict], path: str | Path) -> Path:
    """Quality against training FLOPs, one panel per dataset and metric (a panel's runs share one y axis).

    FLOPs, not seconds: runs made on a shared or different machine still compare (the table keeps the seconds).
    Runs without a recorded FLOP count have no x position and are left out of their panel.
    Uses a bare Agg canvas rather than pyplot, so no global figure state or display is involved.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = sorted({(row["dataset"], row["metric"]) for row in rows})
    colors = {method: f"C{i}" for i, method in enumerate(sorted({row["method"] for row in rows}))}  # same in each panel
    columns = min(max(len(panels), 1), 3)
    grid = (math.ceil(max(len(panels), 1) / columns), columns)
    fig = Figure(figsize=(5 * grid[1], 4 * grid[0]), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(*grid, squeeze=False).ravel()
    for ax in axes[len(panels) :]:  # a last row that is not full
        ax.set_visible(False)
    for ax, (dataset, metric) in zip(axes, panels):
        group = sorted((r for r in rows if (r["dataset"], r["metric"]) == (dataset, metric)), key=_sort_key)
        _panel(ax, group, colors, dataset, metric)
    fig.suptitle("quality vs training cost; marker area grows with log(trainable parameters)", fontsize=9)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def _panel(ax: Any, group: list[dict], colors: dict[str, str], dataset: str, metric: str) -> None:
    """One data set and metric: each run at (FLOPs, quality), labelled by method, and the baseline as a line."""
    from matplotlib.ticker import EngFormatter, LogLocator

    for i, row in enumerate(group):
        if not row["train_flops"]:
            continue
        ax.scatter(
            row["train_flops"],
            row["quality"],
            s=_marker_area(row["trainable_parameters"]),
            color=colors[row["method"]],
            alpha=0.7,
        )
        label = row["method"] + (" (random)" if row["init"] == "random" else "")
        # Staggered label heights: methods of similar cost and quality would otherwise print over each other.
        ax.annotate(
            label,
            (row["train_flops"], row["quality"]),
            xytext=(6, 4 - 10 * (i % 3)),
            textcoords="offset points",
            fontsize=8,
        )
    baseline = next((r for r in group if r["baseline"] is not None), None)
    if baseline is not None:
        label = f"baseline: {baseline['baseline_name'] or 'baseline'}"
        ax.axhline(baseline["baseline"], linestyle="--", color="gray", label=label)
        ax.legend(fontsize=8)
    ax.margins(0.2)  # room for the labels next to the outermost points
    ax.set_title(dataset)
    flops = [r["train_flops"] for r in group if r["train_flops"]]
    if flops and max(flops) > 5 * min(flops):  # log only where costs span about a decade: below, ticks crowd
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(LogLocator(subs=(2, 5)))  # 2x..9x would overlap; only 1, 2, 5 are labelled
        ax.xaxis.set_minor_formatter(EngFormatter())
    ax.xaxis.set_major_formatter(EngFormatter())  # 12.6 T, not 1.26 with a 1e13 offset
    ax.set_xlabel("train FLOPs")
    ax.set_ylabel(metric_name(metric).replace("↓", "(lower is better)"))
    ax.grid(alpha=0.3)
