"""A text-to-speech run that trains in seconds: three Allison prompts said by espeak-ng, a very small
converter, two epochs."""

from __future__ import annotations

from pathlib import Path

from genlab.tasks.contract import TinyRun


def tiny_run(folder: Path) -> TinyRun:
    settings = {
        "data.voices": ["espeak-ng:en-us+f3"],
        "data.limit": 3,
        "data.batch_size": 4,
        "data.chunk_frames": 32,
        "model.width": 8,
        "model.layers": 1,
        "train.epochs": 2,
        "eval.num_prompts": 1,
        "eval.griffin_lim_iters": 2,
    }
    return TinyRun.of("tts-allison", settings, {"text": "Goodbye."}, out=folder / "hello.wav")
