"""The `noise` protocol: a classifier scored on its test texts perturbed by each kind of noise at several
rates (genlab.evaluation.text_robustness) — `genlab eval RUN --protocol noise [--kinds char,synonym]
[--rates 0,0.1,0.3] [--seed 0] [--limit N] [--dataset NAME]`. Writes report.json section `noise` (accuracy,
macro-F1 and the fraction actually changed, per kind and rate) and the curve RUN/noise.png.

genlab.evaluation.protocols lists it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genlab.data.labelled import load_labelled_data
from genlab.errors import GenlabError
from genlab.evaluation.eval_protocol import EvalProtocol
from genlab.evaluation.text_metrics import accuracy, macro_f1
from genlab.evaluation.text_robustness import KINDS, check_kind_and_rate, perturb_all
from genlab.io.files import atomic_write


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise GenlabError(f"{what} must be numbers separated by commas, got '{text}'") from None
    if not values:
        raise GenlabError(f"{what} is empty")
    return values


def _test_examples(handle: Any, dataset: str, limit: int) -> tuple[str, list[tuple[str, str]]]:
    """The labelled test texts: `dataset` (a name or a .jsonl file), else the run's own data set."""
    name = dataset or str(getattr(getattr(handle.recipe, "data", None), "dataset", "") or "fortunes")
    data = load_labelled_data(name, "classify")
    test = data.test_examples(limit)
    unknown = sorted({label for _, label in test} - set(handle.class_names))
    if unknown:
        raise GenlabError(f"the {name} test split has label '{unknown[0]}', which this classifier does not know")
    return name, test


def _predict(handle: Any, texts: list[str], batch_size: int = 64) -> list[str]:
    # a text left empty (all its letters deleted) is read as "-": the classifier still has to answer it
    texts = [t if t.strip() else "-" for t in texts]
    return [
        scores.label for i in range(0, len(texts), batch_size) for scores in handle.classify(texts[i : i + batch_size])
    ]


def _plot(curves: dict[str, list[dict[str, float]]], title: str, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for kind, points in curves.items():
        ax.plot([p["rate"] for p in points], [p["macro_f1"] for p in points], marker="o", label=kind)
    ax.set_xlabel("perturbation rate (fraction of letters or words changed)")
    ax.set_ylabel("macro-F1 on the test split")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(title="noise")
    ax.set_title(title)
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))


def score_noise(
    handle: Any,
    kinds: str = ",".join(KINDS),
    rates: str = "0,0.05,0.1,0.2,0.3",
    seed: int = 0,
    limit: int = 0,
    dataset: str = "",
) -> dict[str, Any]:
    """Accuracy and macro-F1 of a classifier on its test texts perturbed by each kind at each rate; the
    curve as RUN/noise.png. `limit` > 0 scores that many test examples spread over the split."""
    kind_list = [k.strip() for k in kinds.split(",") if k.strip()]
    rate_list = sorted(set(_floats(rates, "rates")))
    for kind in kind_list or [""]:
        for rate in rate_list:
            check_kind_and_rate(kind, rate)
    if limit < 0:
        raise GenlabError(f"limit must be >= 0, got {limit}")
    name, test = _test_examples(handle, dataset, limit)
    texts, truth = [t for t, _ in test], [label for _, label in test]
    clean: dict[str, float] | None = None
    curves: dict[str, list[dict[str, float]]] = {}
    for kind in kind_list:
        curves[kind] = []
        for rate in rate_list:
            if rate == 0 and clean is not None:  # rate 0 is the clean text for every kind: score it once
                curves[kind].append(clean)
                continue
            perturbed = perturb_all(texts, kind, rate, seed)
            predicted = _predict(handle, [p.text for p in perturbed])
            point = {
                "rate": rate,
                "accuracy": accuracy(truth, predicted),
                "macro_f1": macro_f1(truth, predicted),
                "changed": sum(p.changed for p in perturbed) / max(sum(p.units for p in perturbed), 1),
            }
            curves[kind].append(point)
            clean = point if rate == 0 else clean
    _plot(curves, f"{handle.path.name}: {Path(name).name} test split ({len(test)} texts)", handle.path / "noise.png")
    return {
        "dataset": name,
        "examples": len(test),
        "seed": seed,
        "rates": rate_list,
        "curves": curves,
        "plot": "noise.png",
    }


PROTOCOL = EvalProtocol(
    "noise",
    ("classifications",),
    score_noise,
    "accuracy and macro-F1 of a classifier under character, keyboard and synonym noise",
)
