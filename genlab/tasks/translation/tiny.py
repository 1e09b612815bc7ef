"""A translation run that trains in seconds: three-word sentences "translated" word by word."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genlab.tasks.contract import TinyRun

WORDS = {"one": "uno", "two": "dos", "three": "tres", "light": "luz", "water": "agua", "good": "bueno"}


def write_tiny_pairs(path: Path, pairs: int = 240, seed: int = 0) -> Path:
    """Pairs in books "Alpha".."Delta" (training), "Val" (validation) and "Tst" (test), one JSON per line."""
    rng = np.random.default_rng(seed)
    english = list(WORDS)
    books = ["Alpha", "Beta", "Gamma", "Delta", "Val", "Tst"]
    lines = []
    for i in range(pairs):
        words = [str(w) for w in rng.choice(english, size=3)]
        record = {"book": books[i % len(books)], "source": " ".join(words), "target": " ".join(WORDS[w] for w in words)}
        lines.append(json.dumps(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_run(folder: Path) -> TinyRun:
    data = write_tiny_pairs(folder / "pairs.jsonl")
    settings = {
        "data.path": data,
        "data.test_books": "[Tst]",
        "data.validation_books": "[Val]",
        "data.vocab_size": 300,
        "data.max_tokens": 16,
        "data.batch_size": 8,
        "model.n_enc_layer": 1,
        "model.n_dec_layer": 1,
        "model.n_head": 2,
        "model.n_embd": 32,
        "train.max_iters": 8,
        "train.eval_interval": 4,
        "train.warmup_iters": 1,
        "eval.val_examples": 4,
        "eval.limit": 6,
        "eval.max_new_tokens": 10,
    }
    return TinyRun.of("translate-en-es", settings, {"text": "one two three", "beam": 2, "max_tokens": 8})
