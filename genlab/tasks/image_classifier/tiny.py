"""An image_classifier run that trains in seconds: FGSM-RS adversarial training on 448 bundled MNIST
digits (64 more held out for the per-epoch check), evaluated by a short PGD on 100 test digits."""

from __future__ import annotations

from pathlib import Path

from genlab.tasks.contract import TinyRun, tiny_digits


def tiny_run(folder: Path) -> TinyRun:
    settings = {
        **tiny_digits(folder, 512),
        "data.monitor_size": 64,
        "train.epsilon_warmup": 1,
        "eval.steps": 5,
        "eval.restarts": 2,
        "eval.monitor_steps": 3,
    }
    generate = {"n": 4, "seed": 1, "steps": 5, "restarts": 1}
    return TinyRun.of("mnist-robust-fgsm-rs", settings, generate, out=folder / "adversarial.png")
