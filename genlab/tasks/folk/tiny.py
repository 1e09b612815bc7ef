"""A folk run that trains in seconds: 40 real tunes of O'Neill's *Music of Ireland* (music21's corpus) copied
into a folder, a two-layer transformer, and the continuation of one of them."""

from __future__ import annotations

from pathlib import Path

from genlab.data.folk import corpus_folder, split_tunes
from genlab.tasks.contract import TinyRun

TINY_FILE = "0001-0050.abc"  # O'Neill's tunes 1-50 (music21 corpus, oneills1850/)
PROMPT = "X:1\nT:Start\nM:6/8\nL:1/8\nK:Ador\nA2B cBA | BAG E2D |\n"  # two bars of a jig in A dorian


def write_tiny_tunes(folder: Path, count: int = 40) -> Path:
    """The first `count` tunes of O'Neill's first file, as one ABC file."""
    path = folder / "tiny-tunes" / "tunes.abc"
    if not path.is_file():
        tunes = split_tunes((corpus_folder("oneills1850") / TINY_FILE).read_text(encoding="utf-8"))[:count]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(tunes) + "\n", encoding="utf-8")
    return path


def tiny_settings(tunes: Path) -> dict[str, object]:
    return {
        "data.path": tunes,
        "data.block_size": 64,
        "data.batch_size": 4,
        "model.n_layer": 2,
        "model.n_head": 2,
        "model.n_embd": 32,
        "train.max_iters": 6,
        "train.eval_interval": 3,
        "train.warmup_iters": 1,
        "eval.num_samples": 4,
        "eval.max_tokens": 48,
    }


def tiny_run(folder: Path) -> TinyRun:
    settings = tiny_settings(write_tiny_tunes(folder))
    generate = {"prompt": PROMPT, "n": 2, "seed": 1, "max_tokens": 40}
    return TinyRun.of("folk-tunes", settings, generate, out=folder / "tunes.abc")
