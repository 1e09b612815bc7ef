"""Bad and unusual input, tried as a user would: every case ends with exit status 2 (130 for Ctrl-C),
exactly one line on stderr and no traceback, no new or changed file unless the command succeeded, and the
run still resumable and evaluable afterwards. Plus kill -9 at random moments of training."""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from genlab.cli import commands, main
from genlab.data.images import cache_root
from genlab.errors import GenlabError, first_line
from tests.conftest import assert_same_weights, one_error_line, snapshot, tiny_overrides, weights


def train_then_ctrl_c(run: Path, overrides: list[str], after_s: float) -> tuple[int, str]:
    """Start `genlab train` in its own process, send SIGINT `after_s` seconds after the run exists (what
    Ctrl-C does); returns its exit status and stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "genlab", "train", "essay-mlp-mnist", *overrides, "--out", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (run / "config.yaml").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.fixture
def tiny_run(tmp_path, tiny_idx_dir) -> Path:
    run = tmp_path / "run"
    assert main(["train", "essay-mlp-mnist", *tiny_overrides(tiny_idx_dir), "--out", str(run)]) == 0
    return run


def test_a_diverged_gan_stops_at_once_and_keeps_its_checkpoint(tmp_path, tiny_idx_dir, capsys):
    run = tmp_path / "run"
    start = time.perf_counter()
    overrides = tiny_overrides(tiny_idx_dir, **{"train.lr_g": 1e30, "train.lr_d": 1e30})
    assert main(["train", "essay-mlp-mnist", *overrides, "--out", str(run)]) == 2
    assert time.perf_counter() - start < 10
    one_error_line(capsys, "training diverged")
    report = json.loads((run / "report.json").read_text())
    assert report["cost"]["stopped_by"].startswith("non-finite loss at step ")
    weights(run)  # the step-0 checkpoint is kept, its weights finite
    assert main(["eval", str(run), "--n", "200"]) == 0  # and the run still evaluates


def test_a_second_writer_is_refused(tiny_run, capsys):
    fd = os.open(tiny_run, os.O_RDONLY)  # what a running `genlab train` holds
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        before = snapshot(tiny_run)
        assert main(["train", "--resume", str(tiny_run), "train.epochs=3"]) == 2
        one_error_line(capsys, "is being written by another genlab process")
        assert snapshot(tiny_run) == before
    finally:
        os.close(fd)
    assert main(["train", "--resume", str(tiny_run), "train.epochs=3"]) == 0  # the lock goes with its holder


def test_resuming_a_finished_run_has_nothing_to_do_and_the_ledger_adds_sessions_up(tiny_run, capsys):
    before = snapshot(tiny_run)
    assert main(["train", "--resume", str(tiny_run)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert snapshot(tiny_run) == before
    first = json.loads((tiny_run / "report.json").read_text())["cost"]
    assert main(["train", "--resume", str(tiny_run), "train.epochs=3"]) == 0
    cost = json.loads((tiny_run / "report.json").read_text())["cost"]
    assert cost["sessions"] == 2 and cost["this_session"]["steps"] == 4 and cost["steps"] == 12
    assert cost["wall_seconds"] == pytest.approx(first["wall_seconds"] + cost["this_session"]["wall_seconds"], abs=2e-3)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--n", "10000000", "--out", "{tmp}/big.npy"], "more than the 50,000 images one call draws"),
        (["--n", "20000", "--out", "{tmp}/big.png"], "a PNG grid holds at most 10,000 images"),
    ],
)
def test_sizes_are_bounded(tiny_run, tmp_path, capsys, args, expected):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["generate", str(tiny_run), *args]) == 2
    one_error_line(capsys, expected)
    assert not list(tmp_path.glob("big*")) and not list(tmp_path.glob(".big*"))


@pytest.mark.parametrize(
    "damage, command, expected",
    [
        ("report.json", ["train", "--resume", "{run}", "train.epochs=3"], "is not a valid run report"),
        ("checkpoints/last/meta.json", ["train", "--resume", "{run}"], "is not a valid checkpoint description"),
    ],
)
def test_corrupt_run_files_are_one_line(tiny_run, capsys, damage, command, expected):
    (tiny_run / damage).write_bytes(b"\x00\xff not json")
    before = snapshot(tiny_run)
    assert main([a.replace("{run}", str(tiny_run)) for a in command]) == 2
    one_error_line(capsys, expected)
    assert snapshot(tiny_run) == before


def test_failed_trainings_leave_no_folder_behind(tmp_path, capsys):
    (tmp_path / "one-line.txt").write_text("hi\n")
    run = tmp_path / "run"
    assert main(["train", "char-gpt-kjv", f"data.corpus={tmp_path / 'one-line.txt'}", "--out", str(run)]) == 2
    one_error_line(capsys, "holds no text")
    assert not run.exists()


def test_labels_outside_the_classes_are_one_line(tmp_path, tiny_idx_dir, capsys):
    from genlab.data.idx import read_idx, write_idx

    shutil.copytree(tiny_idx_dir, tmp_path / "idx")
    path = tmp_path / "idx" / "train-labels-idx1-ubyte.gz"
    labels = read_idx(path).copy()
    labels[0] = 12
    write_idx(path, labels)
    assert (
        main(["train", "conditional-mlp-mnist", *tiny_overrides(tmp_path / "idx"), "--out", str(tmp_path / "run")]) == 2
    )
    one_error_line(capsys, "train labels run from 0 to 12, outside the 10 classes")
    assert not (tmp_path / "run").exists()


def test_an_uncreatable_data_dir_still_lists(monkeypatch, capsys):
    monkeypatch.setenv("GENLAB_DATA_DIR", "/proc/genlab-cannot-be-here")
    assert main(["data", "list"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_ctrl_c_exits_130_everywhere(tmp_path, tiny_idx_dir):
    """A real SIGINT to a real training process: one line, status 130, and the run resumes."""
    run = tmp_path / "run"
    status, err = train_then_ctrl_c(run, tiny_overrides(tiny_idx_dir, **{"train.epochs": 200}), after_s=0.5)
    assert status == 130, err
    assert len(err.strip().splitlines()) == 1 and "resumable checkpoint saved" in err
    step = int(err.split("interrupted at step ")[1].split(";")[0])
    assert main(["train", "--resume", str(run), f"train.epochs={step // 4 + 1}"]) == 0  # a few more steps


def test_kill_9_at_random_moments_never_breaks_the_run(tmp_path, tiny_idx_dir):
    """kill -9 at random moments (start-up, steps, checkpoint saves) twenty times, resuming after each:
    the run always resumes, and finishes with exactly the weights of an uninterrupted run."""
    overrides = tiny_overrides(
        tiny_idx_dir, **{"train.epochs": 10, "train.ema_decay": 0.9, "train.sample_every": 100}
    )  # no quick FID: steps and saves
    reference = tmp_path / "reference"
    assert main(["train", "essay-mlp-mnist", *overrides, "--out", str(reference)]) == 0
    rng, kills, trial = random.Random(0), 0, 0
    env = {**os.environ, "GENLAB_OFFLINE": "1"}

    def start(run: Path) -> subprocess.Popen:
        fresh = not (run / "config.yaml").is_file()  # killed before the run came into being: train into it again
        argv = ["train", "essay-mlp-mnist", *overrides, "--out", str(run)] if fresh else ["train", "--resume", str(run)]
        return subprocess.Popen(
            [sys.executable, "-m", "genlab", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )

    while kills < 20:
        run = tmp_path / f"run{trial}"
        while kills < 20:
            proc = start(run)
            try:
                proc.wait(timeout=rng.uniform(0.5, 3.0))
            except subprocess.TimeoutExpired:
                proc.kill()  # SIGKILL: no handler runs, nothing is flushed or cleaned up
                proc.wait()
                kills += 1
                continue
            assert proc.returncode == 0, proc.stderr.read().decode()
            break  # it finished between two kills: check it, then kill a new run
        else:
            proc = start(run)  # twenty kills: let it finish
            assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()
        assert_same_weights(weights(reference), weights(run))
        trial += 1


def test_threads_leave_the_cores_of_other_running_processes(monkeypatch):
    from genlab.core import threads

    monkeypatch.delenv("GENLAB_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "INTERVAL_S", 0)
    for running, expected in ((1, 2), (2, 1), (5, 1)):  # /proc/loadavg counts this process too
        monkeypatch.setattr("builtins.open", lambda *a, r=running, **k: __import__("io").StringIO(f"0 0 0 {r}/90 1"))
        assert threads.default_threads() == expected
    monkeypatch.undo()
    monkeypatch.setenv("GENLAB_THREADS", "0")
    with pytest.raises(GenlabError, match="GENLAB_THREADS must be a positive integer"):
        threads.configure_threads()


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory) -> Path:
    from genlab.tasks import TASKS

    folder = tmp_path_factory.mktemp("lm")
    tiny = TASKS["lm"].tiny(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_OFFLINE", "1")
        assert main(["train", tiny.recipe, *tiny.overrides, "--out", str(folder / "run")]) == 0
    return folder / "run"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["generate", "{lm}", "--prompt", "thou", "--temperature", "nan"], "temperature must be a finite number"),
        (["generate", "{lm}", "--prompt", "thou", "--n", "3"], "does not take n for generate"),
        (["generate", "{lm}", "--prompt", "thou", "--label", "3"], "does not take label for generate"),
        (["eval-nets", "train", "--epochs", "0", "--out", "{tmp}/nets"], "epochs must be positive"),
        (["eval-nets", "train", "--data", "moving-mnist", "--epochs", "0", "--out", "{tmp}/nets"], "must be positive"),
        (
            ["train", "/nonexistent/dir/essay-mlp-mnist.yaml"],
            "recipe file /nonexistent/dir/essay-mlp-mnist.yaml not found",
        ),
        (["train", "essay-mlp-mnist", "train.max_minutes=nan"], "'train.max_minutes' must be a finite number"),
    ],
)
def test_more_bad_input_is_one_line(lm_run, tmp_path, capsys, monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    before = snapshot(lm_run)
    assert main([a.replace("{lm}", str(lm_run)).replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    one_error_line(capsys, expected)
    assert snapshot(lm_run) == before and list(tmp_path.iterdir()) == []


def test_characters_a_char_model_never_saw_are_named_once(lm_run):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genlab",
            "generate",
            str(lm_run),
            "--prompt",
            "thou ßß",
            "--max-tokens",
            "3",
            "--seed",
            "0",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "GENLAB_OFFLINE": "1"},
    )
    assert result.returncode == 0 and result.stdout.startswith("thou ßß")
    assert result.stderr.splitlines() == ["genlab: warning: the model never saw 'ß' in training: read as <unk>"]


def test_a_reader_that_goes_away_ends_generation_quietly(lm_run):
    proc = subprocess.Popen(
        [sys.executable, "-m", "genlab", "generate", str(lm_run), "--prompt", "thou", "--max-tokens", "200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "GENLAB_OFFLINE": "1"},
    )
    proc.stdout.close()  # `| head -c 0`: nothing will read what genlab prints
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""


def test_an_interrupted_session_still_counts_in_the_ledger(tmp_path, tiny_idx_dir):
    run = tmp_path / "run"
    overrides = tiny_overrides(tiny_idx_dir, **{"train.epochs": 200, "train.sample_every": 1000})
    status, err = train_then_ctrl_c(run, overrides, after_s=1.0)
    assert status == 130, err
    cost = json.loads((run / "report.json").read_text())["cost"]
    assert cost["stopped_by"] == "interrupted" and cost["sessions"] == 1 and cost["steps"] > 0
    assert cost["wall_seconds"] > 1.0


def bad_input(argv: list[str], capsys, expected: str) -> None:
    """A known bad input must be refused by validation (exit 2, one line), never reach the last-resort guard
    (exit 70, "internal error")."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}, not 2: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genlab: error:") and expected in lines[0], err


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory, tiny_idx_dir) -> Path:
    run = tmp_path_factory.mktemp("gan") / "run"
    assert main(["train", "essay-mlp-mnist", *tiny_overrides(tiny_idx_dir), "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["generate", "{run}", "--seed", str(2**64), "--out", "{tmp}/s.npy"], "--seed must be an integer in 0..4294"),
        (["generate", "{run}", "--seed", "-1", "--out", "{tmp}/s.npy"], "--seed must be an integer in 0..4294967295"),
        (["generate", "{run}", "--n", str(2**63), "--out", "{tmp}/s.npy"], "--n must be an integer in"),
        (["train", "essay-mlp-mnist", f"seed={2**70}"], "recipe key 'seed' must be an integer in 0..4294967295"),
        (["train", "essay-mlp-mnist", f"train.epochs={2**63}"], "recipe key 'train.epochs' must be an integer in"),
        (["generate", "{run}", "--out", "{tmp}/\udcff.npy"], "--out is not UTF-8 text"),
        (["train", "essay-mlp-mnist", "--out", ""], "--out is empty"),
        (["eval-nets", "train", "--epochs", str(2**64)], "--epochs must be an integer in"),
        (["sweep", "essay-mlp-mnist", "--space", "s.yaml", "--trials", "1", "--minutes", "nan"], "finite number"),
        (["generate", "{run}", "--out", "{tmp}/folder.npy"], "is a folder; name a file"),
        (["generate", "{run}", "--out", "{tmp}/missing/a\nb.npy"], "a\\nb.npy: folder"),
    ],
)
def test_values_at_the_edge_of_their_type_are_bad_input(gan_run, tmp_path, capsys, monkeypatch, argv, expected):
    (tmp_path / "folder.npy").mkdir()
    monkeypatch.chdir(tmp_path)
    bad_input([a.replace("{run}", str(gan_run)).replace("{tmp}", str(tmp_path)) for a in argv], capsys, expected)
    assert [p.name for p in tmp_path.iterdir()] == ["folder.npy"]


def test_an_empty_environment_variable_counts_as_unset(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("GENLAB_DATA_DIR", "GENLAB_THREADS", "GENLAB_WORDNET_DIR", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.setenv(name, "")
    assert main(["data", "list"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # not a data folder in the working folder
    assert cache_root() == Path.home() / ".cache" / "genlab" / "data"
    monkeypatch.setenv("RANK", "x")
    bad_input(["train", "essay-mlp-mnist", "--out", str(tmp_path / "run")], capsys, "RANK must be an integer >= 0")


def test_an_output_through_a_link_writes_its_target(gan_run, tmp_path, capsys):
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "old.npy").write_bytes(b"old")
    link = tmp_path / "latest.npy"
    link.symlink_to(tmp_path / "kept" / "old.npy")
    assert main(["generate", str(gan_run), "--n", "3", "--out", str(link)]) == 0
    assert link.is_symlink() and np.load(tmp_path / "kept" / "old.npy").shape == (3, 28, 28)
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["old.npy"]  # no temporary file left
    dangling = tmp_path / "new.npy"
    dangling.symlink_to(tmp_path / "kept" / "new.npy")  # a link to a file not yet there: made there
    assert main(["generate", str(gan_run), "--n", "2", "--out", str(dangling)]) == 0
    assert dangling.is_symlink() and np.load(dangling).shape == (2, 28, 28)
    capsys.readouterr()
    bad_input(["generate", str(gan_run), "--n", "2", "--out", "/dev/null"], capsys, "ending in .png or .npy")
    (tmp_path / "dev.npy").symlink_to("/dev/null")
    bad_input(["generate", str(gan_run), "--n", "2", "--out", str(tmp_path / "dev.npy")], capsys, "not a regular file")
    assert Path("/dev/null").is_char_device()


def test_a_run_goes_only_into_a_new_empty_or_unfinished_folder(tmp_path, tiny_idx_dir, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work\n")
    before = snapshot(mine)
    overrides = tiny_overrides(tiny_idx_dir, **{"train.epochs": 1})
    bad_input(["train", "essay-mlp-mnist", *overrides, "--out", str(mine)], capsys, "holds other files (thesis.tex)")
    assert snapshot(mine) == before
    bad_input(["train", "essay-mlp-mnist", *overrides, "--out", str(mine / "thesis.tex")], capsys, "is a file")
    (tmp_path / "empty").mkdir()
    assert main(["train", "essay-mlp-mnist", *overrides, "--out", str(tmp_path / "empty")]) == 0
    assert not (tmp_path / "empty" / ".genlab-new-run").exists()  # the mark goes once config.yaml is written
    # a run killed before it came into being keeps its mark, and a new training may take its folder
    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints").mkdir(parents=True)
    (unfinished / ".genlab-new-run").write_text("")
    assert main(["train", "essay-mlp-mnist", *overrides, "--out", str(unfinished)]) == 0


def test_an_unexpected_error_is_one_line_exit_70_and_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(commands.COMMANDS, "data", broken)
    assert main(["data", "list"]) == 70
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "genlab: internal error in `genlab data`: ZeroDivisionError: division by zero "
        "(a bug; rerun with --debug or GENLAB_DEBUG=1 for the traceback)"
    ]
    with pytest.raises(ZeroDivisionError):
        main(["data", "list", "--debug"])
    monkeypatch.setenv("GENLAB_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["data", "list"])


def test_an_exception_is_quoted_as_one_line_or_by_its_type():
    assert first_line(EOFError()) == "EOFError"  # an empty file's EOFError says nothing
    assert first_line(ValueError("\nbad value\n  at line 2")) == "bad value"
    assert first_line(OSError("x" * 400), 300) == "x" * 300
