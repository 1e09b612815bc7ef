"""A GAN run that trains in about a second: the essay's recipe on 256 bundled digits."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from genlab.core.task import TinyRun
from genlab.data.idx import write_idx
from genlab.data.images import IDX_FILES, bundled_mnist_subset


def write_tiny_mnist(folder: Path, train: int = 256, test: int = 100) -> Path:
    """The first `train` / `test` digits of the bundled subset, as the four MNIST IDX files."""
    subset = bundled_mnist_subset()
    arrays = {"train_images": subset["train_images"][:train], "test_images": subset["test_images"][:test],
              "train_labels": subset["train_labels"][:train].astype(np.uint8),
              "test_labels": subset["test_labels"][:test].astype(np.uint8)}
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in IDX_FILES.items():
        write_idx(folder / name, arrays[key])
    return folder


def tiny_run(folder: Path) -> TinyRun:
    data = write_tiny_mnist(folder / "tiny-mnist")
    settings = {"data.path": data, "data.batch_size": 64, "train.epochs": 2, "train.progress": False,
                "train.r1_gamma": 1.0, "train.ema_decay": 0.9, "eval.num_samples": 200}
    return TinyRun("essay-mlp-mnist", [f"{k}={v}" for k, v in settings.items()],
                   generate={"n": 8, "seed": 1}, cli_generate=["--n", "8", "--seed", "1", "--out",
                                                               str(folder / "samples.png")])
