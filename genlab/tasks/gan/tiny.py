"""A GAN run that trains in about a second: the essay's recipe on 256 bundled digits."""

from __future__ import annotations

from pathlib import Path

from genlab.tasks.contract import TinyRun, tiny_digits


def tiny_run(folder: Path) -> TinyRun:
    settings = {
        **tiny_digits(folder, 256),
        "train.r1_gamma": 1.0,
        "train.ema_decay": 0.9,
        "eval.num_samples": 200,
    }
    return TinyRun.of("essay-mlp-mnist", settings, {"n": 8, "seed": 1}, out=folder / "samples.png")
