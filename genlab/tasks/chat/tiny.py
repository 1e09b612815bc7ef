"""A chat run that trains in seconds: a tiny GPT on a file of made-up conversations of two kinds."""

from __future__ import annotations

import json
from pathlib import Path

from genlab.tasks.contract import TinyRun

WORDS = "red green blue sun moon star tree river stone cloud".split()
SPANISH = dict(zip(WORDS, "rojo verde azul sol luna estrella árbol río piedra nube".split()))


def write_tiny_conversations(path: Path) -> Path:
    """Translate a pair of words into Spanish, and small talk of two turns: enough for every split."""
    lines = []
    for a in WORDS:
        for b in WORDS:
            user = f"Translate into Spanish: {a} {b}"
            messages = [
                {"role": "user", "content": user},
                {"role": "assistant", "content": f"{SPANISH[a]} {SPANISH[b]}"},
            ]
            lines.append({"kind": "translate", "messages": messages})
        talk = [
            {"role": "user", "content": f"Do you like the {a}?"},
            {"role": "assistant", "content": f"I like the {a}."},
            {"role": "user", "content": "Why?"},
            {"role": "assistant", "content": f"The {a} is nice."},
        ]
        lines.append({"kind": "smalltalk", "messages": talk})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def tiny_settings(data: Path) -> dict[str, object]:
    return {
        "data.file": data,
        "data.vocab_size": 300,
        "data.block_size": 96,
        "data.batch_size": 8,
        "data.eval_limit": 4,
        "model.n_layer": 1,
        "model.n_head": 2,
        "model.n_embd": 16,
        "train.epochs": 2,
        "train.warmup_iters": 1,
        "eval.max_new_tokens": 8,
    }


def tiny_run(folder: Path) -> TinyRun:
    data = write_tiny_conversations(folder / "conversations.jsonl")
    return TinyRun.of("chat-sft", tiny_settings(data), {"prompt": "Translate into Spanish: sun moon", "max_tokens": 8})
