"""A chorale run that trains in seconds: six of Bach's chorales (music21's corpus) copied into a folder, a
one-bar context, a two-layer transformer, and a two-bar chorale written as MIDI."""

from __future__ import annotations

import shutil
from pathlib import Path

from genlab.data.chorales import score_files
from genlab.tasks.contract import TinyRun

PROMPT = "<major> p72 p67 p64 p48 _ _ _ _"  # a C major chord to go on from
TINY_FILES = ("bwv10.7", "bwv101.7", "bwv102.7", "bwv103.6", "bwv104.6", "bwv108.6")  # four-part, 4/4


def write_tiny_chorales(folder: Path) -> Path:
    """TINY_FILES copied from music21's corpus into folder/tiny-chorales/."""
    out = folder / "tiny-chorales"
    if not out.is_dir():
        out.mkdir(parents=True)
        for file in score_files(None):
            if file.stem in TINY_FILES:
                shutil.copy(file, out / file.name)
    return out


def tiny_settings(chorales: Path) -> dict[str, object]:
    return {
        "data.path": chorales,
        "data.window_bars": 1,
        "data.batch_size": 4,
        "model.n_layer": 2,
        "model.n_head": 2,
        "model.n_embd": 32,
        "train.max_iters": 6,
        "train.eval_interval": 3,
        "train.warmup_iters": 1,
        "eval.num_samples": 2,
        "eval.bars": 2,
    }


def tiny_run(folder: Path) -> TinyRun:
    settings = tiny_settings(write_tiny_chorales(folder))
    return TinyRun.of(
        "bach-chorales", settings, {"prompt": PROMPT, "bars": 2, "n": 1, "seed": 1}, out=folder / "chorales.mid"
    )
