"""An image_classifier run that trains in seconds: FGSM-RS adversarial training on 448 bundled MNIST
digits (64 more held out for the per-epoch check), evaluated by a short PGD on 100 test digits."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from genlab.core.task import TinyRun
from genlab.data.idx import write_idx
from genlab.data.images import IDX_FILES, bundled_mnist_subset


def write_tiny_mnist(folder: Path, train: int = 512, test: int = 100) -> Path:
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
    settings = {"data.path": data, "data.batch_size": 64, "data.monitor_size": 64, "train.epochs": 2,
                "train.epsilon_warmup": 1, "train.progress": False, "eval.steps": 5, "eval.restarts": 2,
                "eval.monitor_steps": 3}
    return TinyRun("mnist-robust-fgsm-rs", [f"{k}={v}" for k, v in settings.items()],
                   generate={"n": 4, "seed": 1, "steps": 5, "restarts": 1},
                   cli_generate=["--n", "4", "--seed", "1", "--steps", "5", "--restarts", "1", "--out",
                                 str(folder / "adversarial.png")])
