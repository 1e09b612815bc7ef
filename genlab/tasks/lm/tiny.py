"""A language-model run that trains in about a second: a 2-layer char GPT on a few hundred lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genlab.tasks.contract import TinyRun

WORDS = "thou hast you have the light and darkness of waters under heaven was good".split()


def write_tiny_corpus(path: Path, lines: int = 900, seed: int = 0) -> Path:
    """Distinct three-word sentences over a 14-word vocabulary, one per line."""
    rng = np.random.default_rng(seed)
    sentences = sorted({" ".join(rng.choice(WORDS, size=3)) for _ in range(lines)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sentences) + "\n")
    return path


def tiny_settings(corpus: Path) -> dict[str, Any]:
    return {
        "data.corpus": corpus,
        "data.block_size": 32,
        "data.batch_size": 4,
        "model.n_layer": 2,
        "model.n_head": 2,
        "model.n_embd": 32,
        "train.max_iters": 8,
        "train.eval_interval": 4,
        "train.warmup_iters": 1,
        "eval.eval_iters": 2,
    }


def tiny_run(folder: Path) -> TinyRun:
    corpus = write_tiny_corpus(folder / "corpus.txt")
    return TinyRun.of("char-gpt-kjv", tiny_settings(corpus), {"prompt": "thou ", "max_tokens": 12, "seed": 3})
