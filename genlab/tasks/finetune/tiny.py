"""A fine-tuning run that trains in about a second: LoRA on a tiny random GPT, classifying sentences
by their first word."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genlab.interop.hf import export_model
from genlab.io.tokenizers import CharTokenizer
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.contract import TinyRun
from genlab.tasks.lm.tiny import write_tiny_corpus

FIRST_WORD_LABELS = {"thou": "a", "hast": "b"}  # any other first word: "c"


def write_tiny_start(folder: Path, texts: list[str], seed: int = 0) -> Path:
    """A random 2-layer char GPT in the Hugging Face GPT-2 layout: a start for fine-tuning."""
    tokenizer = CharTokenizer.train(texts)
    torch.manual_seed(seed)
    model = Transformer(
        TransformerConfig(
            vocab_size=tokenizer.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=32, activation="gelu_new"
        )
    )
    return export_model(model, tokenizer, folder)


def write_tiny_classification(path: Path, sentences: list[str]) -> Path:
    with open(path, "w") as fh:
        for s in sentences:
            fh.write(json.dumps({"text": s, "label": FIRST_WORD_LABELS.get(s.split()[0], "c")}) + "\n")
    return path


def tiny_run(folder: Path) -> TinyRun:
    sentences = write_tiny_corpus(folder / "corpus.txt").read_text().splitlines()
    start = write_tiny_start(folder / "start", sentences)
    data = write_tiny_classification(folder / "classify.jsonl", sentences)
    settings = {
        "start": start,
        "data.dataset": data,
        "data.batch_size": 16,
        "data.max_tokens": 32,
        "data.limit": 160,
        "method.rank": 2,
        "method.target_modules": "[attn.qkv]",
        "train.epochs": 2,
        "train.lr": 3e-3,
        "train.warmup_iters": 1,
    }
    return TinyRun.of("fortunes-lora", settings, {"prompt": "thou art"})
