"""A flow run that trains in seconds: a narrow class-conditional U-Net on 256 bundled digits."""

from __future__ import annotations

from pathlib import Path

from genlab.data.images import write_mnist_subset
from genlab.tasks.contract import TinyRun


def tiny_run(folder: Path) -> TinyRun:
    data = write_mnist_subset(folder / "tiny-mnist", train=256, test=100)
    settings = {
        "data.name": "mnist",
        "data.path": data,
        "data.batch_size": 64,
        "model.width": 16,
        "train.epochs": 2,
        "train.progress": False,
        "train.warmup_steps": 2,
        "sample.steps": 3,
        "eval.num_samples": 100,
    }
    return TinyRun(
        "flow-fashion",
        [f"{k}={v}" for k, v in settings.items()],
        generate={"n": 8, "seed": 1, "steps": 3},
        cli_generate=["--n", "8", "--seed", "1", "--steps", "3", "--out", str(folder / "samples.png")],
    )
