"""A GAN run that trains in about a second: the essay's recipe on 256 bundled digits."""

from __future__ import annotations

from pathlib import Path

from genlab.data.images import write_mnist_subset
from genlab.tasks.contract import TinyRun


def tiny_run(folder: Path) -> TinyRun:
    data = write_mnist_subset(folder / "tiny-mnist", train=256, test=100)
    settings = {
        "data.path": data,
        "data.batch_size": 64,
        "train.epochs": 2,
        "train.progress": False,
        "train.r1_gamma": 1.0,
        "train.ema_decay": 0.9,
        "eval.num_samples": 200,
    }
    return TinyRun(
        "essay-mlp-mnist",
        [f"{k}={v}" for k, v in settings.items()],
        generate={"n": 8, "seed": 1},
        cli_generate=["--n", "8", "--seed", "1", "--out", str(folder / "samples.png")],
    )
