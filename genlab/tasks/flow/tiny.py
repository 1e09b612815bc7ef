"""A flow run that trains in seconds: a narrow class-conditional U-Net on 256 bundled digits."""
from __future__ import annotations

from pathlib import Path

from genlab.core.task import TinyRun
from genlab.data.idx import write_idx
from genlab.data.images import IDX_FILES, bundled_mnist_subset


def write_tiny_digits(folder: Path, train: int = 256, test: int = 100) -> Path:
    """The first `train` / `test` bundled digits, as the four MNIST IDX files."""
    subset = bundled_mnist_subset()
    arrays = {"train_images": subset["train_images"][:train], "test_images": subset["test_images"][:test],
              "train_labels": subset["train_labels"][:train].astype("uint8"),
              "test_labels": subset["test_labels"][:test].astype("uint8")}
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in IDX_FILES.items():
        write_idx(folder / name, arrays[key])
    return folder


def tiny_run(folder: Path) -> TinyRun:
    data = write_tiny_digits(folder / "tiny-mnist")
    settings = {"data.name": "mnist", "data.path": data, "data.batch_size": 64, "model.width": 16,
                "train.epochs": 2, "train.progress": False, "train.warmup_steps": 2, "sample.steps": 3,
                "eval.num_samples": 100}
    return TinyRun("flow-fashion", [f"{k}={v}" for k, v in settings.items()],
                   generate={"n": 8, "seed": 1, "steps": 3}, cli_generate=[
                       "--n", "8", "--seed", "1", "--steps", "3", "--out", str(folder / "samples.png")])
