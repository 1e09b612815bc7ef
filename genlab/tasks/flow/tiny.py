"""A flow run that trains in seconds: a narrow class-conditional U-Net on 256 bundled digits."""

from __future__ import annotations

from pathlib import Path

from genlab.tasks.contract import TinyRun, tiny_digits


def tiny_run(folder: Path) -> TinyRun:
    settings = {
        **tiny_digits(folder, 256),
        "data.name": "mnist",
        "model.width": 16,
        "train.warmup_steps": 2,
        "sample.steps": 3,
        "eval.num_samples": 100,
    }
    return TinyRun.of("flow-fashion", settings, {"n": 8, "seed": 1, "steps": 3}, out=folder / "samples.png")
