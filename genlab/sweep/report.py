"""`genlab report sweeps/<study>`: report.md (the best trial and its command line, a table of every trial)
and three plots beside it: the optimisation history, parameter importances and objective vs cost."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError
from genlab.io.files import atomic_write, atomic_write_text
from genlab.sweep.storage import open_storage
from genlab.sweep.study import SWEEP_FILE

IMPORTANCE_SEED = 0  # fANOVA fits a random forest: a fixed seed gives the same importances every time
PLOTS = ("history.png", "importances.png", "objective_vs_cost.png")
PLOT_TITLES = ("optimisation history", "parameter importances", "objective vs training cost")


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
    lines += [", ".join(f"{n} {name}" for name, n in counts.items() if n) + ".", ""]
    if any(t.state == TrialState.COMPLETE for t in trials):
        lines += _best_trial(study.best_trial, keys, metric)
    else:
        lines += ["No trial has completed yet.", ""]
    lines += _trial_table(trials, keys, metric)
    lines += [
        "",
        "A pruned trial's objective is the last value it reported. Failed trials keep their reason in "
        "the study (user attr `error` or `failed_because`).",
        "",
    ]
    lines += [line for name, title in zip(PLOTS, PLOT_TITLES) for line in (f"![{title}]({name})", "")]
    return "\n".join(lines)


def _best_trial(best: Any, keys: list[str], metric: str) -> list[str]:
    lines = ["## Best trial", "", f"Trial {best.number}: `{metric}` = {best.value:.6g}", ""]
    lines += [f"- `{k}` = {_fmt(best.params.get(k))}" for k in keys]
    return lines + ["", "Reproduce it:", "", "```bash", best.user_attrs.get("command", "?"), "```", ""]


def _trial_table(trials: list[Any], keys: list[str], metric: str) -> list[str]:
    lines = [
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
    return lines


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
    """The three plots of PLOTS, written into `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = [t for t in study.get_trials(deepcopy=False) if _objective(t) is not None]
    scores = importances(study)
    paths = [folder / name for name in PLOTS]
    draw = (
        lambda ax: _history(ax, trials, study.direction.name, metric),
        lambda ax: _importances(ax, scores),
        lambda ax: _cost(ax, trials, metric),
    )
    sizes = ((6, 4), (6, 0.5 + 0.5 * max(1, len(scores))), (6, 4))
    for path, painter, size in zip(paths, draw, sizes):
        fig, ax = plt.subplots(figsize=size)
        painter(ax)
        fig.tight_layout()
        atomic_write(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=100))
        plt.close(fig)
    return paths


def _by_state(ax: Any, trials: list[Any], x: Any, metric: str) -> None:
    """Complete trials as dots, pruned ones as crosses, at (x(trial), objective)."""
    from optuna.trial import TrialState

    for state, marker in ((TrialState.COMPLETE, "o"), (TrialState.PRUNED, "x")):
        chosen = [t for t in trials if t.state == state and x(t) is not None]
        ax.scatter([x(t) for t in chosen], [_objective(t) for t in chosen], marker=marker, label=state.name.lower())
    ax.set(ylabel=metric)


def _history(ax: Any, trials: list[Any], direction: str, metric: str) -> None:
    from optuna.trial import TrialState

    _by_state(ax, trials, lambda t: t.number, metric)
    better = min if direction == "MINIMIZE" else max
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    best_so_far, running = [], None
    for t in complete:
        running = t.value if running is None else better(running, t.value)
        best_so_far.append(running)
    ax.step([t.number for t in complete], best_so_far, where="post", color="black", label="best so far")
    ax.set(xlabel="trial", title="optimisation history")
    ax.legend()


def _importances(ax: Any, scores: dict[str, float]) -> None:
    if scores:
        names = list(scores)[::-1]
        ax.barh(names, [scores[n] for n in names])
        ax.set(xlabel="importance (fANOVA, seed 0)", title="parameter importances")
    else:
        ax.text(0.5, 0.5, "needs two or more complete trials", ha="center", va="center")
        ax.set_axis_off()


def _cost(ax: Any, trials: list[Any], metric: str) -> None:
    def seconds(t: Any) -> float | None:
        value = t.user_attrs.get("train_seconds")
        return value if isinstance(value, (int, float)) else None

    _by_state(ax, trials, seconds, metric)
    ax.set(xlabel="training seconds", title="objective vs cost")
    ax.legend()


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
