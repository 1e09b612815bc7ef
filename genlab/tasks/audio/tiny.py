"""An audio run that trains in seconds: two espeak-ng voices saying five digits (one voice held out for
the test split), synthesized by genlab.data.audio into a folder, and a very small GAN."""

from __future__ import annotations

from pathlib import Path

from genlab.data.audio import SPEAKERS, synthesize
from genlab.tasks.contract import TinyRun


def write_tiny_digits(folder: Path) -> Path:
    """15 train + 15 test clips: en-us+m1 (train) and en-us (held out) saying 0-4 at three rates/pitches."""
    train_voice, test_voice = SPEAKERS[1], SPEAKERS[0]  # held_out False, True: one voice per split
    if not (folder / "manifest.json").is_file():
        synthesize(folder, [train_voice, test_voice], digits=range(5), workers=1, progress=False)
    return folder


def tiny_run(folder: Path) -> TinyRun:
    data = write_tiny_digits(folder / "tiny-digits")
    settings = {
        "data.path": data,
        "data.batch_size": 5,
        "train.epochs": 2,
        "model.width": 4,
        "model.latent_dim": 8,
        "train.r1_gamma": 1.0,
        "train.ema_decay": 0.9,
        "eval.num_samples": 20,
        "eval.quick_samples": 10,
        "eval.griffin_lim_iters": 4,
        "eval.quick_griffin_lim_iters": 2,
    }
    return TinyRun.of("spoken-digits-gan", settings, {"n": 1, "label": 3, "seed": 1}, out=folder / "clip.wav")
