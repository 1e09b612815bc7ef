"""`genlab sweep`: trials are ordinary runs, pruning stops runs consistently, the study survives kill -9 and
is shared by parallel workers, a bad space file is one line, and `genlab report` reports a sweep folder.
Every trial is the lm task's tiny run (a 2-layer char GPT on a few hundred lines, well under a second)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from genlab.cli import main
from genlab.sweep.report import PLOTS
from genlab.tasks import TASKS
from tests.conftest import one_error_line

PRUNING_SPACE = {
    "objective": {"metric": "val/loss", "direction": "minimize"},
    "sampler": "random",
    "seed": 0,
    "pruner": {"type": "median", "n_startup_trials": 1},
    "params": {
        "train.lr": {"type": "float", "low": 1.0e-4, "high": 3.0e-2, "log": True},
        "model.n_embd": {"type": "categorical", "choices": [16, 32]},
    },
}


@pytest.fixture
def tiny(tmp_path) -> list[str]:
    """The tiny lm run's recipe and overrides, trained 16 steps in 4 periods (4 pruning points)."""
    run = TASKS["lm"].tiny(tmp_path / "tiny")
    return [run.recipe, *run.overrides, "train.max_iters=16", "train.min_lr=0"]


def write_space(folder: Path, space: dict, name: str = "space.yaml") -> str:
    path = folder / name
    path.write_text(yaml.safe_dump(space))
    return str(path)


def load(folder: Path, study: str) -> optuna.Study:
    storage = optuna.storages.journal.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / study / "journal.log"))
    )
    return optuna.load_study(study_name=study, storage=storage)


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL]


def test_a_sweep_runs_trials_as_runs_prunes_and_reports(tmp_path, tiny, capsys):
    space = write_space(tmp_path, PRUNING_SPACE)
    out = tmp_path / "sweeps"
    assert main(["sweep", *tiny, "--space", space, "--trials", "5", "--study", "s", "--out", str(out)]) == 0
    study = load(out, "s")
    states = [t.state for t in study.get_trials()]
    assert len(states) == 5 and set(states) == {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    for trial in study.get_trials():
        run = out / "s" / f"trial-{trial.number:04d}"
        cost = json.loads((run / "report.json").read_text())["cost"]
        assert trial.user_attrs["run"] == str(run) and trial.user_attrs["train_flops"] == cost["train_flops"]
        assert trial.user_attrs["command"].startswith(f"genlab train {tiny[0]} ")
        assert f"--out {run}" in trial.user_attrs["command"]
        if trial.state == optuna.trial.TrialState.PRUNED:  # a pruned run is consistent, just shorter
            assert cost["stopped_by"] == "pruned" and cost["steps"] < 16
        else:
            assert cost["stopped_by"] == "periods" and cost["steps"] == 16
            assert trial.value == pytest.approx(json.loads((run / "report.json").read_text())["validation"]["loss"])
    capsys.readouterr()

    assert main(["report", str(out / "s")]) == 0
    report = (out / "s" / "report.md").read_text()
    assert "## Best trial" in report and f"Trial {study.best_trial.number}:" in report
    assert report.count("| pruned |") == states.count(optuna.trial.TrialState.PRUNED)
    assert study.best_trial.user_attrs["command"] in report
    for name in PLOTS:
        assert (out / "s" / name).stat().st_size > 1000

    # the same command again has nothing left to do: N finished trials in total, not N more
    assert main(["sweep", *tiny, "--space", space, "--trials", "5", "--study", "s", "--out", str(out)]) == 0
    assert len(load(out, "s").get_trials()) == 5


def test_the_same_seed_samples_the_same_params(tmp_path, tiny):
    space = write_space(tmp_path, {**PRUNING_SPACE, "sampler": "tpe", "pruner": "none"})
    out = tmp_path / "sweeps"
    for study in ("a", "b"):
        assert main(["sweep", *tiny, "--space", space, "--trials", "2", "--study", study, "--out", str(out)]) == 0
    a, b = ([t.params for t in load(out, name).get_trials()] for name in ("a", "b"))
    assert a == b and a[0] != a[1]


def test_a_killed_sweep_resumes_without_losing_a_finished_trial(tmp_path, tiny):
    space = write_space(tmp_path, {**PRUNING_SPACE, "pruner": "none"})
    out = tmp_path / "sweeps"
    # 48 steps in 12 periods: a trial long enough to be caught running
    command = [
        "sweep",
        *tiny,
        "train.max_iters=48",
        "--space",
        space,
        "--trials",
        "3",
        "--study",
        "k",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "genlab", *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline, before = time.monotonic() + 120, []
    try:
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if not (out / "k" / "journal.log").is_file():
                continue
            try:
                study = load(out, "k")
            except KeyError:  # the journal exists before the record that creates the study is written
                continue
            running = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING]
            # Killed in its first half (fewer than 6 of 12 periods reported): a trial near its end could finish
            # between this look and the kill, leaving nothing running to resume.
            early = running and len(running[0].intermediate_values) < 6
            if finished(study) and early and (out / "k" / f"trial-{running[0].number:04d}" / "config.yaml").is_file():
                proc.send_signal(signal.SIGKILL)
                before = finished(study)
                break
    finally:
        proc.kill()
        proc.wait()
    assert before, "the sweep never had a finished and a running trial at once"
    killed = [t for t in load(out, "k").get_trials() if t.state == optuna.trial.TrialState.RUNNING]
    assert len(killed) == 1

    assert main(command) == 0
    study = load(out, "k")
    assert len(finished(study)) == 3
    after = {t.number: (t.state, t.value, t.params) for t in study.get_trials()}
    for trial in before:  # nothing finished is lost or changed
        assert after[trial.number] == (trial.state, trial.value, trial.params)
    dead = study.get_trials()[killed[0].number]
    assert dead.state == optuna.trial.TrialState.FAIL and dead.user_attrs["failed_because"] == "its worker was killed"
    retry = [t for t in study.get_trials() if t.user_attrs.get("retry_of") == dead.number]
    assert len(retry) == 1 and retry[0].params == dead.params and retry[0].state.is_finished()


def test_two_workers_share_the_study(tmp_path, tiny, capfd):
    space = write_space(tmp_path, {**PRUNING_SPACE, "pruner": "none"})
    out = tmp_path / "sweeps"
    assert (
        main(
            [
                "sweep",
                *tiny,
                "train.max_iters=40",
                "--space",
                space,
                "--trials",
                "6",
                "--workers",
                "2",
                "--study",
                "w",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    captured = capfd.readouterr()
    assert "locked" not in captured.err + captured.out and "Traceback" not in captured.err
    study = load(out, "w")
    trials = study.get_trials()
    assert len(finished(study)) == 6 and len(trials) == 6
    runs = [t.user_attrs["run"] for t in trials]
    assert len(set(runs)) == 6 and all((Path(r) / "report.json").is_file() for r in runs)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers took trials
    assert not list((out / "w" / "workers").iterdir())  # each worker released its claim


BAD_SPACES = [
    ({"train.lrr": {"type": "float", "low": 0.001, "high": 0.01}}, "unknown recipe key 'train.lrr'"),
    ({"train.lr": {"type": "float", "low": 0.01, "high": 0.001}}, "low (0.01) must be less than high (0.001)"),
    ({"train.lr": {"type": "gaussian", "low": 0.001, "high": 0.01}}, "unknown distribution type 'gaussian'"),
    ({"train.weight_decay": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}, "a log scale needs low > 0"),
    ({"model.n_embd": {"type": "categorical", "choices": ["big"]}}, "recipe key 'model.n_embd' must be int"),
]


@pytest.mark.parametrize("params, expected", BAD_SPACES)
def test_a_bad_space_file_is_one_line_and_writes_nothing(tmp_path, tiny, capsys, params, expected):
    space = write_space(tmp_path, {**PRUNING_SPACE, "params": params})
    out = tmp_path / "sweeps"
    assert main(["sweep", *tiny, "--space", space, "--trials", "2", "--out", str(out)]) == 2
    one_error_line(capsys, expected)
    assert not out.exists()


def test_an_unknown_objective_metric_fails_the_trial_in_one_line(tmp_path, tiny, capsys):
    space = write_space(tmp_path, {**PRUNING_SPACE, "objective": {"metric": "val/lost"}})
    out = tmp_path / "sweeps"
    assert main(["sweep", *tiny, "--space", space, "--trials", "2", "--study", "m", "--out", str(out)]) == 2
    one_error_line(capsys, "objective metric 'val/lost' is not among the period metrics of trial 0")
    (trial,) = load(out, "m").get_trials()
    assert trial.state == optuna.trial.TrialState.FAIL and "val/loss" in trial.user_attrs["error"]


def test_resuming_with_another_space_is_refused(tmp_path, tiny, capsys):
    out = tmp_path / "sweeps"
    first = write_space(tmp_path, {**PRUNING_SPACE, "pruner": "none"})
    assert main(["sweep", *tiny, "--space", first, "--trials", "1", "--study", "r", "--out", str(out)]) == 0
    capsys.readouterr()
    other = write_space(tmp_path, {**PRUNING_SPACE, "sampler": "tpe"}, "space.yaml")
    assert main(["sweep", *tiny, "--space", other, "--trials", "2", "--study", "r", "--out", str(out)]) == 2
    one_error_line(capsys, "was started with another space")
