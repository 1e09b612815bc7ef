"""An image_classifier run that trains in seconds: FGSM-RS adversarial training on 448 bundled MNIST
digits (64 more held out for the per-epoch check), evaluated by a short PGD on 100 test digits."""

from __future__ import annotations

from pathlib import Path

from genlab.data.images import write_mnist_subset
from genlab.tasks.contract import TinyRun


def tiny_run(folder: Path) -> TinyRun:
    data = write_mnist_subset(folder / "tiny-mnist", train=512, test=100)
    settings = {
        "data.path": data,
        "data.batch_size": 64,
        "data.monitor_size": 64,
        "train.epochs": 2,
        "train.epsilon_warmup": 1,
        "train.progress": False,
        "eval.steps": 5,
        "eval.restarts": 2,
        "eval.monitor_steps": 3,
    }
    return TinyRun(
        "mnist-robust-fgsm-rs",
        [f"{k}={v}" for k, v in settings.items()],
        generate={"n": 4, "seed": 1, "steps": 5, "restarts": 1},
        cli_generate=[
            "--n",
            "4",
            "--seed",
            "1",
            "--steps",
            "5",
            "--restarts",
            "1",
            "--out",
            str(folder / "adversarial.png"),
        ],
    )
