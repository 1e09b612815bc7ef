"""`genlab report sweeps/<study>`: report.md (the best trial and its command line, a table of every trial)
and three plots beside it: the optimisation history, parameter importances and objective vs cost."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError
from genlab.io.files import atomic_write_text
from genlab.sweep.storage import open_storage
from genlab.sweep.study import SWEEP_FILE

IMPORTANCE_SEED = 0  # fANOVA fits a random forest: a fixed seed gives the same importances every time
PLOTS = ("history.png", "importances.png", "objective_vs_cost.png")


def is_sweep(path: str | Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def load_sweep(folder: Path) -> tuple[dict[str, Any], Any]:
    """The sweep's settings (sweep.json) and its Optuna study, opened read-only in spirit."""
    import optuna

    try:
        settings = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
        study_name, metric = settings["study"], settings["space"]["metric"]
    except (OSError, ValueError, KeyError, TypeError):
        raise GenlabError(f"{folder / SWEEP_FILE} is not a valid sweep description") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(settings.get("storage"), folder))
    except KeyError:
        raise GenlabError(f"{folder}: its storage holds no study named {study_name}") from None
    settings["metric"] = metric
    return settings, study


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _objective(trial: Any) -> float | None:
    """A complete trial's value; a pruned trial's last reported value (what it reached before it stopped)."""
    if trial.value is not None:
        return trial.value
    if trial.intermediate_values:
        return trial.intermediate_values[max(trial.intermediate_values)]
    return None


def render(settings: dict[str, Any], study: Any) -> str:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    keys = [p["key"] for p in settings["space"]["params"]]
    metric = settings["metric"]
    lines = [
        f"# Sweep {study.study_name}",
        "",
        f"Recipe `{settings['recipe']}`"
        + (f" with `{shlex.join(settings['overrides'])}`" if settings["overrides"] else "")
        + f"; objective: {study.direction.name.lower()} `{metric}`; sampler "
        f"{settings['space']['sampler']}, pruner {settings['space']['pruner']}.",
        "",
    ]
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    lines.append(", ".join(f"{n} {name}" for name, n in counts.items() if n) + ".")
    lines.append("")
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        lines += ["## Best trial", "", f"Trial {best.number}: `{metric}` = {best.value:.6g}", ""]
        lines += [f"- `{k}` = {_fmt(best.params.get(k))}" for k in keys]
        lines += ["", "Reproduce it:", "", "```bash", best.user_attrs.get("command", "?"), "```", ""]
    else:
        lines += ["No trial has completed yet.", ""]
    lines += [
        "## All trials",
        "",
        "| trial | state | " + " | ".join(f"`{k}`" for k in keys) + f" | `{metric}` | train s | FLOPs |",
        "|---|---|" + "---|" * len(keys) + "---|---|---|",
    ]
    for t in trials:
        note = f" (retry of {t.user_attrs['retry_of']})" if "retry_of" in t.user_attrs else ""
        flops = t.user_attrs.get("train_flops")
        lines.append(
            f"| {t.number}{note} | {t.state.name.lower()} | "
            + " | ".join(_fmt(t.params.get(k)) for k in keys)
            + f" | {_fmt(_objective(t))} | {_fmt(t.user_attrs.get('train_seconds'))} | "
            + (f"{flops:.3g}" if isinstance(flops, (int, float)) else "–")
            + " |"
        )
    lines += [
        "",
        "A pruned trial's objective is the last value it reported. Failed trials keep their reason in "
        "the study (user attr `error` or `failed_because`).",
        "",
        "![optimisation history](history.png)",
        "",
        "![parameter importances](importances.png)",
        "",
        "![objective vs training cost](objective_vs_cost.png)",
        "",
    ]
    return "\n".join(lines)


def importances(study: Any) -> dict[str, float]:
    """fANOVA importances with a fixed seed; {} while fewer than two complete trials vary a param."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        return {}
    try:
        return optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=IMPORTANCE_SEED))
    except (ValueError, RuntimeError):  # e.g. every complete trial has the same params
        return {}


def plot(study: Any, metric: str, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False) if _objective(t) is not None]
    better = min if study.direction.name == "MINIMIZE" else max
    paths = [folder / name for name in PLOTS]

    fig, ax = plt.subplots(figsize=(6, 4))
    for state, marker in ((TrialState.COMPLETE, "o"), (TrialState.PRUNED, "x")):
        chosen = [t for t in trials if t.state == state]
        ax.scatter([t.number for t in chosen], [_objective(t) for t in chosen], marker=marker, label=state.name.lower())
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    best_so_far, running = [], None
    for t in complete:
        running = t.value if running is None else better(running, t.value)
        best_so_far.append(running)
    ax.step([t.number for t in complete], best_so_far, where="post", color="black", label="best so far")
    ax.set(xlabel="trial", ylabel=metric, title="optimisation history")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths[0], dpi=100)
    plt.close(fig)

    scores = importances(study)
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.5 * max(1, len(scores))))
    if scores:
        names = list(scores)[::-1]
        ax.barh(names, [scores[n] for n in names])
        ax.set(xlabel="importance (fANOVA, seed 0)", title="parameter importances")
    else:
        ax.text(0.5, 0.5, "needs two or more complete trials", ha="center", va="center")
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for state, marker in ((TrialState.COMPLETE, "o"), (TrialState.PRUNED, "x")):
        chosen = [t for t in trials if t.state == state and isinstance(t.user_attrs.get("train_seconds"), (int, float))]
        ax.scatter(
            [t.user_attrs["train_seconds"] for t in chosen],
            [_objective(t) for t in chosen],
            marker=marker,
            label=state.name.lower(),
        )
    ax.set(xlabel="training seconds", ylabel=metric, title="objective vs cost")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths[2], dpi=100)
    plt.close(fig)
    return paths


def write_report(folder: str | Path, out: str | Path | None = None) -> tuple[Path, list[Path]]:
    """report.md and the plots, in `out` (default: the sweep folder itself)."""
    folder = Path(folder)
    settings, study = load_sweep(folder)
    markdown = render(settings, study)  # everything is read before anything is written
    target = Path(out) if out is not None else folder
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenlabError(f"--out {target}: cannot create the folder ({exc.strerror})") from None
    path = target / "report.md"
    atomic_write_text(path, markdown)
    return path, plot(study, settings["metric"], target)
