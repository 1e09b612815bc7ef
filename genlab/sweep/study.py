"""Running a sweep: each trial is an ordinary run, sweeps/<study>/trial-NNNN/, made by `genlab.fit` with
the sampled params as overrides and a period callback that reports the objective to Optuna and stops an
unpromising run (StopTraining("pruned")), so a pruned trial is a consistent, shorter run.

`--trials N` counts finished (complete or pruned) trials in the study, not trials of this command: running
the same command again continues the study up to N. `--workers K` starts K processes of this command, each
taking trials from the shared storage, with the machine's threads split between them.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab.api import fit
from genlab.core.recipe import read_recipe_tree
from genlab.core.threads import usable_cores
from genlab.core.trainer import Interrupted, StopTraining
from genlab.errors import GenlabError
from genlab.io.files import atomic_write_text
from genlab.io.validate import environ_int
from genlab.sweep.space import Param, Space, check_against_recipe, format_value, read_space
from genlab.sweep.storage import WORKER_ATTR, WorkerLock, open_storage, recover_stale_trials
from genlab.tasks import recipe_from_tree

SWEEP_FILE = "sweep.json"  # what makes a folder a sweep: the command's settings, checked on resume
POLL_S = 1.0  # how often a worker with nothing to start looks whether the others' trials finished
MAX_FAILS_IN_A_ROW = 3  # a worker stops rather than fail trial after trial (a bad override, a broken data set)


@dataclass
class SweepConfig:
    recipe: str
    overrides: list[str]
    space_path: str
    trials: int
    minutes: float = 0.0
    workers: int = 1
    storage: str | None = None
    study: str | None = None
    out: str = "sweeps"
    worker_index: int | None = None  # set in the processes that --workers K starts

    @property
    def study_name(self) -> str:
        return self.study or f"{Path(self.recipe).stem}-{Path(self.space_path).stem}"

    @property
    def folder(self) -> Path:
        return Path(self.out) / self.study_name


class TrialFailed(GenlabError):
    """A trial's training failed (diverged, ...): the trial is FAIL and the sweep goes on."""


class UnknownObjective(GenlabError):
    """The objective metric is not among a run's period metrics: every trial would fail, so the sweep stops."""


class PeriodObjective:
    """The on_period callback of one trial: the objective from the period's metrics, reported to Optuna."""

    def __init__(self, trial: Any, metric: str, sample_every: int, periods: int):
        self.trial, self.metric, self.sample_every, self.periods = trial, metric, sample_every, periods
        self.value: float | None = None
        self.pruned = False
        self.seen: list[str] = []

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        self.seen = sorted(metrics)
        if self.metric not in metrics:
            period = metrics.get("period", 0.0)
            # end_period (which writes val/*, quality/*) runs every sample_every periods: there it must be.
            if float(period).is_integer() and int(period) % self.sample_every == 0:
                raise UnknownObjective(self.missing_message())
            return
        self.value = float(metrics[self.metric])
        self.trial.report(self.value, step)
        # After the last period the run is whole: stopping it would save nothing, so it completes.
        if metrics.get("period", 0.0) < self.periods and self.trial.should_prune():
            self.pruned = True
            raise StopTraining("pruned")

    def missing_message(self) -> str:
        return (
            f"objective metric '{self.metric}' is not among the period metrics of trial {self.trial.number} "
            f"(it has: {', '.join(self.seen)})"
        )


def _suggest(trial: Any, param: Param) -> Any:
    if param.type == "categorical":
        return trial.suggest_categorical(param.key, param.choices)
    if param.type == "int":
        return trial.suggest_int(param.key, int(param.low), int(param.high), step=param.step or 1, log=param.log)
    return trial.suggest_float(param.key, float(param.low), float(param.high), step=param.step, log=param.log)


def make_sampler(space: Space, seed: int) -> Any:
    import optuna

    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if space.sampler == "grid":
        return optuna.samplers.GridSampler({p.key: p.grid_values() for p in space.params}, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=space.tpe_startup_trials)


def make_pruner(space: Space) -> Any:
    import optuna

    if space.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=space.n_startup_trials, n_warmup_steps=space.n_warmup_steps)


def grid_size(space: Space) -> int | None:
    if space.sampler != "grid":
        return None
    size = 1
    for param in space.params:
        size *= len(param.grid_values())
    return size


def sweep_settings(config: SweepConfig, space: Space) -> dict[str, Any]:
    return {
        "recipe": config.recipe,
        "overrides": list(config.overrides),
        "study": config.study_name,
        "storage": config.storage,
        "space": space.as_dict(),
    }


def prepare(config: SweepConfig) -> Space:
    """Check everything a user can get wrong, before anything is written; returns the space."""
    if config.trials < 1:
        raise GenlabError(f"--trials must be at least 1, got {config.trials}")
    if config.workers < 1:
        raise GenlabError(f"--workers must be at least 1, got {config.workers}")
    if config.minutes < 0:
        raise GenlabError(f"--minutes must be >= 0, got {config.minutes}")
    space = read_space(config.space_path)
    tree = read_recipe_tree(config.recipe, config.overrides)
    recipe_from_tree(tree)  # the fixed overrides alone must make a valid recipe
    check_against_recipe(space, tree, config.space_path)
    sweep_file = config.folder / SWEEP_FILE
    if sweep_file.is_file():
        try:
            earlier = json.loads(sweep_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise GenlabError(f"{sweep_file} is not a valid sweep description") from None
        if earlier != sweep_settings(config, space):
            changed = [k for k, v in sweep_settings(config, space).items() if earlier.get(k) != v]
            raise GenlabError(
                f"study {config.study_name} in {config.folder} was started with another "
                f"{' and '.join(changed)}: resume it with the same command, or pass another --study"
            )
    return space


def open_study(config: SweepConfig, space: Space, seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(config.storage, config.folder)
    try:
        return optuna.create_study(
            storage=storage,
            study_name=config.study_name,
            direction=space.direction,
            sampler=make_sampler(space, seed),
            pruner=make_pruner(space),
            load_if_exists=True,
        )
    except ValueError as exc:  # e.g. an existing study with the other direction
        raise GenlabError(f"study {config.study_name}: {exc}") from None


def _counts(study: Any) -> tuple[int, int, int]:
    """(finished, running, failed) trials of the study."""
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    finished = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)
    return finished, states.count(TrialState.RUNNING), states.count(TrialState.FAIL)


class Worker:
    """One process taking trials from the study until it holds N finished trials, or the time is up."""

    def __init__(self, config: SweepConfig, space: Space, deadline: float | None):
        self.config, self.space, self.deadline = config, space, deadline
        self.lock = WorkerLock(config.folder)

    def objective(self, trial: Any) -> float:
        import optuna

        config = self.config
        trial.set_user_attr(WORKER_ATTR, self.lock.name)  # first: a killed worker's trial is then recoverable
        sampled = [f"{p.key}={format_value(_suggest(trial, p))}" for p in self.space.params]
        run = config.folder / f"trial-{trial.number:04d}"
        command = shlex.join(["genlab", "train", config.recipe, *config.overrides, *sampled, "--out", str(run)])
        trial.set_user_attr("run", str(run))
        trial.set_user_attr("command", command)
        typed = recipe_from_tree(read_recipe_tree(config.recipe, [*config.overrides, *sampled]))  # this trial's
        tracker = PeriodObjective(trial, self.space.metric, typed.train.sample_every, typed.train.periods)
        try:
            _, report = fit(config.recipe, run, [*config.overrides, *sampled], on_period=tracker)
        except Interrupted:
            trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})  # Ctrl-C: run it again
            raise
        except UnknownObjective as exc:
            trial.set_user_attr("error", str(exc))
            raise
        except GenlabError as exc:
            trial.set_user_attr("error", str(exc))
            raise TrialFailed(f"trial {trial.number} failed: {exc}") from None
        cost = report.get("cost", {})
        for key in ("train_seconds", "train_flops", "stopped_by", "steps"):
            trial.set_user_attr(key, cost.get(key))
        if tracker.pruned:
            raise optuna.TrialPruned(f"pruned at step {cost.get('steps')}")
        if tracker.value is None:
            trial.set_user_attr("error", tracker.missing_message())
            raise UnknownObjective(tracker.missing_message())
        return tracker.value

    def _print(self, trial: Any) -> None:
        value = "" if trial.value is None else f" {self.space.metric}={trial.value:.6g}"
        error = f": {trial.user_attrs['error']}" if "error" in trial.user_attrs else ""
        seconds = trial.user_attrs.get("train_seconds")
        spent = f" (trained {seconds:.1f} s)" if isinstance(seconds, (int, float)) else ""
        print(f"trial {trial.number}: {trial.state.name.lower()}{value}{spent}{error}", flush=True)

    def run(self, study: Any) -> None:
        from optuna.trial import TrialState

        limit = min(self.config.trials, grid_size(self.space) or self.config.trials)
        fails_in_a_row = 0
        try:
            while True:
                finished, running, _ = _counts(study)
                if finished >= limit or (self.deadline is not None and time.monotonic() >= self.deadline):
                    return
                if finished + running >= limit:  # the others' trials may finish the study: wait for them
                    time.sleep(POLL_S)
                    recover_stale_trials(study)
                    continue
                before = {t.number for t in study.get_trials(deepcopy=False)}
                study.optimize(self.objective, n_trials=1, catch=(TrialFailed,))
                mine = [
                    t
                    for t in study.get_trials(deepcopy=False)
                    if t.number not in before and t.user_attrs.get(WORKER_ATTR) == self.lock.name
                ]
                for trial in mine:
                    self._print(trial)
                fails_in_a_row = fails_in_a_row + 1 if mine and mine[-1].state == TrialState.FAIL else 0
                if fails_in_a_row >= MAX_FAILS_IN_A_ROW:
                    raise GenlabError(
                        f"{fails_in_a_row} trials in a row failed, the last with: "
                        f"{mine[-1].user_attrs.get('error', 'no message')}"
                    )
        finally:
            self.lock.close()


def _worker_argv(config: SweepConfig, index: int, minutes_left: float) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "genlab",
        "sweep",
        config.recipe,
        *config.overrides,
        "--space",
        config.space_path,
        "--trials",
        str(config.trials),
        "--study",
        config.study_name,
        "--out",
        config.out,
        "--worker-index",
        str(index),
    ]
    if config.storage:
        argv += ["--storage", config.storage]
    if config.minutes:
        argv += ["--minutes", f"{max(minutes_left, 1e-3):.6f}"]
    return argv


def _run_workers(config: SweepConfig, started: float) -> None:
    """K processes of this command; each gets its share of the threads (GENLAB_THREADS)."""
    total = environ_int("GENLAB_THREADS", 0) or usable_cores()
    env = {**os.environ, "GENLAB_THREADS": str(max(1, total // config.workers))}
    minutes_left = config.minutes - (time.monotonic() - started) / 60 if config.minutes else 0.0
    procs = [subprocess.Popen(_worker_argv(config, i, minutes_left), env=env) for i in range(config.workers)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:  # Ctrl-C reached every worker too (same process group): wait for their stops
        for p in procs:
            p.wait()
        raise
    bad = [(i, c) for i, c in enumerate(codes) if c != 0]
    if bad:
        raise GenlabError(f"worker {bad[0][0]} ended with exit status {bad[0][1]} (its message is above)")


def summary(study: Any, space: Space) -> str:
    finished, running, failed = _counts(study)
    line = f"study {study.study_name}: {finished} finished, {failed} failed, {running} running"
    try:
        best = study.best_trial
    except ValueError:
        return line + "; no complete trial yet"
    return line + f"; best: trial {best.number}, {space.metric}={best.value:.6g}\n  {best.user_attrs.get('command')}"


def run_sweep(config: SweepConfig) -> Any:
    """`genlab sweep`: prepare the study folder, recover killed trials, run the workers; returns the study."""
    started = time.monotonic()
    space = prepare(config)
    folder = config.folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenlabError(f"cannot create the study folder {folder}: {exc.strerror or exc}") from None
    index = config.worker_index or 0
    if config.worker_index is None:  # the command the user ran (not one of its --workers processes)
        atomic_write_text(folder / SWEEP_FILE, json.dumps(sweep_settings(config, space), indent=2) + "\n")
    # Seeded by the worker and by what the study already holds: a fresh single-worker study repeats
    # exactly, and neither a second worker nor a resumed command replays the same draws.
    probe = open_study(config, space, space.seed)
    study = open_study(config, space, space.seed + 1000 * index + len(probe.get_trials(deepcopy=False)))
    if config.worker_index is None:
        retried = recover_stale_trials(study)
        if retried:
            print(
                f"trials {', '.join(map(str, retried))} were running when their worker was killed: "
                "marked failed, their params queued again",
                flush=True,
            )
    if config.workers > 1 and config.worker_index is None:
        _run_workers(config, started)
    else:
        deadline = started + config.minutes * 60 if config.minutes else None
        Worker(config, space, deadline).run(study)
    if config.worker_index is None:
        print(summary(study, space))
    return study
