"""Shared fixtures and helpers: offline data resolution, a tiny IDX copy of MNIST, tiny GAN recipes,
training through the Python API, and weight comparison."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genlab import api
from genlab.data.images import write_mnist_subset
from tests.serving import train_tiny_runs

# One thread count for every run of the session, module fixtures and subprocesses included, so that runs
# compared bit for bit never depend on the machine's load at the moment each was made. Under pytest-xdist
# (`make test` runs one worker per core) each worker takes one thread: two workers of two threads each would
# fight over two cores.
os.environ["GENLAB_THREADS"] = "1" if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1 else "2"


@pytest.fixture(autouse=True)
def offline_data(tmp_path_factory, monkeypatch):
    """Never download in tests and never touch the user's data cache."""
    monkeypatch.setenv("GENLAB_OFFLINE", "1")
    monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path_factory.mktemp("data-cache")))


@pytest.fixture(scope="session")
def tiny_idx_dir(tmp_path_factory) -> Path:
    """256 training and 100 test digits from the bundled subset, as the four IDX files."""
    return write_mnist_subset(tmp_path_factory.mktemp("tiny-mnist"), train=256, test=100)


def tiny_overrides(idx_dir: Path, **extra: object) -> list[str]:
    """Overrides that make the essay recipe train in about a second."""
    settings = {
        "data.path": str(idx_dir),
        "data.batch_size": 64,
        "train.epochs": 2,
        "train.progress": False,
        "train.r1_gamma": 1.0,
        "train.sample_every": 1,
        "train.checkpoint_every": 1,
        "eval.num_samples": 200,
        **extra,
    }
    return [f"{k}={v}" for k, v in settings.items()]


def train(recipe: str, out: Path, overrides: list[str], resume: bool = False) -> dict:
    """Train through the Python API (what `genlab train` calls); returns the run's report."""
    if resume:
        return api.fit(out, overrides=overrides, resume=True)[1]
    return api.fit(recipe, out, overrides)[1]


def weights(run_path: Path, checkpoint: str = "last") -> dict[str, dict[str, torch.Tensor]]:
    """Every module's tensors in a run's checkpoint; a checkpoint without weights fails here."""
    files = sorted((run_path / "checkpoints" / checkpoint).glob("*.safetensors"))
    assert files, f"no weights in {run_path / 'checkpoints' / checkpoint}"
    return {f.stem: load_file(str(f)) for f in files}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys(), f"different modules: {sorted(a)} vs {sorted(b)}"
    for name in a:
        assert a[name].keys() == b[name].keys(), f"{name}: different tensors"
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), f"{name}.{key} differs"


def one_error_line(capsys, expected: str = "") -> str:
    """What a user must see after bad input: exactly one `genlab: error:` line on stderr, no traceback."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genlab: error:") and "Traceback" not in err, err
    assert expected in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    """Every file and folder below `folder` with its modification time and size: equal snapshots mean a
    command wrote, removed or changed nothing there."""
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")} if folder.exists() else {}


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory) -> dict[str, Path]:
    """Tiny runs of every kind the server serves (tests/serving.py), trained once per session."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_OFFLINE", "1")
        mp.setenv("GENLAB_DATA_DIR", str(tmp_path_factory.mktemp("serve-data-cache")))
        return train_tiny_runs(tmp_path_factory.mktemp("served-runs"))
