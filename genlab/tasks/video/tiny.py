"""A video run that trains in seconds: a narrow network on clips of 256 bundled digits, 16x16 frames."""

from __future__ import annotations

from pathlib import Path

from genlab.tasks.contract import TinyRun, tiny_digits


def tiny_run(folder: Path) -> TinyRun:
    settings = {
        **tiny_digits(folder, 256),
        "data.batch_size": 4,
        "model.size": 16,
        "model.width": 16,
        "train.steps": 6,
        "train.period_steps": 3,
        "train.warmup_steps": 1,
        "sample.steps": 2,
        "eval.num_clips": 4,
    }
    settings.pop("train.epochs")
    return TinyRun.of(
        "moving-mnist-video", settings, {"n": 2, "seed": 1, "prompt": "a 2 and a 9"}, out=folder / "clip.gif"
    )
