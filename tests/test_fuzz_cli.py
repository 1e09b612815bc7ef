"""Property-based fuzzing of the CLI (Hypothesis): argv for every command and the files genlab reads, at and past
the edges of their types. Whatever comes in, the exit status is 0 or 2 (never 70, a bug that reached the
last-resort guard), stderr holds no traceback, nothing is written outside the place a command was told to write,
and no half-written (temporary) file is left behind.

Seeded (derandomize) and bounded: the same cases on every run, about two minutes in all. A longer search:
    GENLAB_FUZZ_SCALE=20 python -m pytest -q tests/test_fuzz_cli.py   (20 times the examples, new ones each run)
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genlab.cli import main
from genlab.cli.commands import task_options
from genlab.core.recipe import read_recipe_tree
from genlab.errors import GenlabError
from genlab.tasks import TASKS, recipe_from_tree

SCALE = int(os.environ.get("GENLAB_FUZZ_SCALE", "1") or 1)
EXIT_CODES = {0, 2}  # success, bad input; 70 (a bug) and 130/141 (Ctrl-C, a closed pipe) cannot happen here


def fuzz(examples: int):
    return settings(
        max_examples=examples * SCALE,
        derandomize=SCALE == 1,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


EDGE_INTS = [-(2**64), -(2**63) - 1, -(2**63), -(2**31), -1, 0, 1, 2, 2**31 - 1, 2**32 - 1, 2**32, 2**53 + 1]
EDGE_INTS += [2**63 - 1, 2**63, 2**64, 10**30]
EDGE_FLOATS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, -1.0, 0.5, 1.0, 2.5, 1e-30]
EDGE_TEXTS = ["", " ", "x" * 20_000, "\udcff", "a\udcfeb", "\x00", "ü", "\n", "-1", "nan", "1e999", "0x10", "None"]
INTS = st.sampled_from(EDGE_INTS) | st.integers(-10, 10)
FLOATS = st.sampled_from(EDGE_FLOATS) | st.floats(-5, 5)
TEXTS = st.sampled_from(EDGE_TEXTS) | st.text(max_size=12)
VALUES = INTS | FLOATS | TEXTS | st.booleans() | st.none() | st.lists(INTS, max_size=3)


def spelled(value) -> str:
    """A value as a user types it on the command line."""
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


# Odd places to write to; the fuzzed command runs in a scratch folder holding these.
ODD_PATHS = ["", ".", "/", "/dev/null", "/proc/genlab-out", "folder", "file.txt", "link", "dangling", "file.txt/x"]
ODD_PATHS += ["x" * 300, "a\nb", "\udcff", "missing/x", "mine"]


def scratch(folder: Path) -> Path:
    """A working folder with a user's file, folder, a folder of the user's own files and links."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "folder").mkdir(parents=True)
    (folder / "mine").mkdir()
    (folder / "mine" / "notes.txt").write_text("mine\n")
    (folder / "file.txt").write_text("a user's file\n")
    (folder / "target.txt").write_text("a link's target\n")
    (folder / "link").symlink_to("target.txt")
    (folder / "dangling").symlink_to("gone.txt")
    return folder


def run_cli(argv: list[str], where: Path) -> tuple[int, str]:
    """genlab.cli.main in this process, in folder `where`: (exit status, stderr)."""
    err, out = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(where)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    finally:
        os.chdir(cwd)
    return code, err.getvalue()


def assert_handled(argv: list[str], code: int, err: str) -> None:
    shown = f"genlab {' '.join(map(ascii, argv))[:400]}\n{err[-2000:]}"
    assert code in EXIT_CODES, shown
    assert "Traceback" not in err and "internal error" not in err, shown
    if code == 2 and "usage:" not in err:
        lines = err.strip().splitlines()
        assert lines and lines[-1].startswith("genlab: error:"), shown


def snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    """Every entry below `folder` (links themselves, not their targets) with its modification time and size."""
    return {p: (p.lstat().st_mtime_ns, p.lstat().st_size) for p in folder.rglob("*")} if folder.exists() else {}


def half_written(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def changed(before: dict, after: dict) -> set[Path]:
    """Entries made, removed or changed; a folder that is still there counts only by what is in it."""
    return {
        p for p in before.keys() | after.keys() if before.get(p) != after.get(p) and not (p in before and p.is_dir())
    }


GENERATE: dict[str, list[str]] = {}  # task -> its tiny `genlab generate` options, writing into the working folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A tiny run of every registered task (about a minute in all)."""
    root = tmp_path_factory.mktemp("fuzz-runs")
    made = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_OFFLINE", "1")
        for name, task in TASKS.items():
            tiny = task.tiny(root / f"{name}-data")
            assert main(["train", tiny.recipe, *tiny.overrides, "--out", str(root / name)]) == 0
            made[name] = root / name
            GENERATE[name] = [a if not a.startswith(str(root)) else "out" + Path(a).suffix for a in tiny.cli_generate]
    return made


# -- recipes: every value of every task's recipe at the edges of its type -----------------------------------------
def leaves(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        keys += leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key]
    return keys


@pytest.fixture(scope="module")
def recipe_trees(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("fuzz-recipes")
    trees = {}
    for name, task in TASKS.items():
        tiny = task.tiny(root / name)
        trees[name] = read_recipe_tree(tiny.recipe, tiny.overrides)
    return trees


@fuzz(300)
@given(data=st.data())
def test_recipe_values_at_their_edges_are_taken_or_refused_in_one_line(recipe_trees, data):
    name = data.draw(st.sampled_from(sorted(recipe_trees)))
    tree = json.loads(json.dumps(recipe_trees[name]))
    key = data.draw(st.sampled_from(leaves(tree) + ["train.nope", "data"]))
    value = data.draw(VALUES)
    node, *parts = tree, *key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    try:
        recipe_from_tree(tree)
    except GenlabError as exc:
        assert "\n" not in str(exc)


# -- argv: every command ----------------------------------------------------------------------------------------
def option_argv(method: str, task: str, data) -> list[str]:
    """A few of the task's options for `method`, each at an edge value of its type."""
    options = {k: tp for k, (tp, owners) in task_options(method).items() if task in owners}
    argv = []
    for option in data.draw(st.lists(st.sampled_from(sorted(options)), max_size=3, unique=True)) if options else []:
        tp = options[option]
        strategy = {int: INTS, float: FLOATS}.get(tp, TEXTS)
        argv += [f"--{option.replace('_', '-')}", spelled(data.draw(strategy))]
    return argv


def small(argv: list[str]) -> list[str]:
    """Keep generation small where a fuzzed count is valid: the edges are what is tested, not the time."""
    out = list(argv)
    for i, a in enumerate(out[:-1]):
        if a in ("--n", "--max-tokens", "--steps", "--restarts", "--limit", "--k", "--query-tokens"):
            if out[i + 1].lstrip("-").isdigit() and 16 < int(out[i + 1]) <= 50_000:
                out[i + 1] = "16"
    return out


@fuzz(60)
@given(data=st.data())
def test_generate_argv(runs, tmp_path_factory, data):
    task = data.draw(st.sampled_from(sorted(runs)))
    where = scratch(tmp_path_factory.getbasetemp() / "fuzz-generate")
    out = data.draw(st.sampled_from(ODD_PATHS + ["s.png", "s.npy", "s.txt", "s.wav", "folder/s.png"]))
    argv = small(["generate", str(runs[task]), *option_argv("generate", task, data), "--out", out])
    before_run, before = snapshot(runs[task]), snapshot(where)
    code, err = run_cli(argv, where)
    assert_handled(argv, code, err)
    assert snapshot(runs[task]) == before_run
    target = Path(os.path.realpath(where / out))
    grew = changed(before, snapshot(where))
    if code != 0:
        assert grew == set(), argv
    else:  # the file named, a link's target, or the files of a folder named (audio clips)
        assert all(p in (where / out, target) or target in p.parents for p in grew), (argv, grew)
    assert (where / "link").is_symlink() and not half_written(where)


@fuzz(25)
@given(data=st.data())
def test_eval_and_export_argv(runs, tmp_path_factory, data):
    task = data.draw(st.sampled_from(sorted(runs)))
    where = scratch(tmp_path_factory.getbasetemp() / "fuzz-eval")
    copy = where / "run"
    shutil.copytree(runs[task], copy)
    command = data.draw(st.sampled_from(["eval", "export"]))
    if command == "eval":
        argv = small(["eval", "run", *option_argv("evaluate", task, data)])
    else:
        argv = ["export", "run", "--out", data.draw(st.sampled_from(ODD_PATHS + ["g.onnx", "link.onnx"]))]
    before = snapshot(where)
    code, err = run_cli(argv, where)
    assert_handled(argv, code, err)
    if code != 0:  # a refused command writes nothing anywhere
        assert changed(before, snapshot(where)) == set(), argv
    assert not half_written(where)


@fuzz(30)
@given(data=st.data())
def test_train_argv(runs, tmp_path_factory, data):
    """A tiny GAN recipe with one fuzzed override and an odd --out: a run appears only in a new folder, an
    empty one, or a run of its own; a folder of the user's files, a file or a link is left as it was."""
    where = scratch(tmp_path_factory.getbasetemp() / "fuzz-train")
    tiny = TASKS["gan"].tiny(where / "data")
    key = data.draw(st.sampled_from(["train.epochs", "seed", "data.batch_size", "data.limit", "train.lr_g", "name"]))
    value = spelled(data.draw(VALUES))
    out = data.draw(st.sampled_from(ODD_PATHS + ["new-run", "folder"]))
    argv = ["train", tiny.recipe, *tiny.overrides, "train.epochs=1", f"{key}={value}", "--out", out]
    if key == "train.epochs" and value.isdigit() and int(value) > 2:
        argv[-3] = "train.epochs=2"  # a valid long run: its length is not what is tested
    before = snapshot(where)
    code, err = run_cli(argv, where)
    assert_handled(argv, code, err)
    untouched = {where / n for n in ("file.txt", "target.txt", "link", "dangling", "mine", "mine/notes.txt")}
    assert not changed(before, snapshot(where)) & untouched, argv
    assert sorted(p.name for p in (where / "mine").iterdir()) == ["notes.txt"]
    if code != 0:
        assert changed(before, snapshot(where)) - {where / "data"} <= {where / "data"}, argv
    assert not half_written(where)


@fuzz(30)
@given(
    command=st.sampled_from(["data", "serve", "sweep", "report", "eval-nets", "train", "nope", "--debug"]),
    words=st.lists(TEXTS | INTS.map(str) | FLOATS.map(repr) | st.sampled_from(ODD_PATHS), max_size=4),
)
def test_any_words_after_any_command(tmp_path_factory, command, words):
    where = scratch(tmp_path_factory.getbasetemp() / "fuzz-words")
    if command == "serve":
        words = [*words, "--port", "1"]  # a port only root may take: refused or bad input, never served
    argv = [command, *words]
    if command == "eval-nets" and words[:1] == ["train"]:
        argv += ["--epochs", "0"]  # a real evaluator training takes minutes
    code, err = run_cli(argv, where)
    if command == "serve" and code == 0:  # pragma: no cover - only if a server could start and stop
        return
    assert_handled(argv, code, err)
    assert not half_written(where)


# -- files genlab reads -----------------------------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | INTS | FLOATS | TEXTS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
DAMAGES = st.sampled_from(["empty", "garbage", "truncated", "json", "binary"])


def damage(path: Path, how: str, data) -> None:
    payload = path.read_bytes() if path.is_file() else b""
    if how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"\xff\xfe\x00 not what genlab wrote \x80")
    elif how == "truncated":
        path.write_bytes(payload[: len(payload) // 2])
    elif how == "json":
        path.write_text(json.dumps(data.draw(JSON_VALUES), allow_nan=True))
    else:
        path.write_bytes(data.draw(st.binary(max_size=64)))


def run_files(run: Path) -> list[str]:
    return sorted(
        str(p.relative_to(run))
        for p in run.rglob("*")
        if p.is_file() and p.suffix in (".json", ".yaml", ".safetensors", ".pt", ".jsonl", ".bin", ".txt")
    )


@fuzz(50)
@given(data=st.data())
def test_damaged_run_files(runs, tmp_path_factory, data):
    """Any one file of a run damaged (config, report, checkpoint meta and weights, tokenizer, data): every
    command that reads the run refuses in one line or works, and leaves the damaged run as it was."""
    task = data.draw(st.sampled_from(sorted(runs)))
    where = tmp_path_factory.getbasetemp() / "fuzz-damaged"
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(runs[task], where / "run")
    run = where / "run"
    damage(run / data.draw(st.sampled_from(run_files(run))), data.draw(DAMAGES), data)
    command = data.draw(
        st.sampled_from(
            [
                ["generate", "run", *GENERATE[task]],
                ["eval", "run"],
                ["report", "run", "--out", "report"],
                ["train", "--resume", "run"],
                ["export", "run", "--out", "g.onnx"],
            ]
        )
    )
    code, err = run_cli(command, where)
    assert_handled(command, code, err)
    assert not half_written(where)


@fuzz(30)
@given(data=st.data())
def test_damaged_inputs(tmp_path_factory, data):
    """The data files a recipe names (IDX images, a text corpus, a JSON-lines data set) and the image files
    `generate --init` reads, damaged: one line or success, never a traceback."""
    where = tmp_path_factory.getbasetemp() / "fuzz-inputs"
    shutil.rmtree(where, ignore_errors=True)
    task = data.draw(st.sampled_from(["gan", "lm", "finetune", "audio"]))
    tiny = TASKS[task].tiny(where / "data")
    files = sorted(p for p in (where / "data").rglob("*") if p.is_file())
    damage(data.draw(st.sampled_from(files)), data.draw(DAMAGES), data)
    argv = ["train", tiny.recipe, *tiny.overrides, "train.epochs=1", "--out", str(where / "run")]
    code, err = run_cli(argv, where)
    assert_handled(argv, code, err)
    assert not half_written(where)
