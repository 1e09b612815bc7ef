"""Tokenizers: a character tokenizer and byte-level BPE (Hugging Face `tokenizers`).

Both save to one `tokenizer.json`; `load_tokenizer` tells them apart by the file's contents, so a
run directory (or a Hugging Face model folder) only needs that one file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from genlab.errors import GenlabError

PAD, UNK, BOS, EOS, MASK = "<pad>", "<unk>", "<bos>", "<eos>", "<mask>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS, MASK)
CHAR_FORMAT = "genlab-char"


class Tokenizer(Protocol):
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def token_id(self, token: str) -> int | None: ...
    def save(self, path: str | Path) -> None: ...


def _atomic_write(path: str | Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class CharTokenizer:
    """One id per character seen in training; unseen characters map to <unk>."""

    def __init__(self, chars: list[str]):
        self.itos = list(SPECIAL_TOKENS) + [c for c in chars if c not in SPECIAL_TOKENS]
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.unk_id = self.stoi[UNK]
        self.special_ids = set(range(len(SPECIAL_TOKENS)))

    @classmethod
    def train(cls, texts: list[str]) -> CharTokenizer:
        return cls(sorted(set("".join(texts))))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(c, self.unk_id) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.itos[i] for i in ids if i not in self.special_ids)

    def token_id(self, token: str) -> int | None:
        return self.stoi.get(token)

    def save(self, path: str | Path) -> None:
        _atomic_write(path, json.dumps({"format": CHAR_FORMAT, "vocab": self.itos}, ensure_ascii=False))


class BPETokenizer:
    """Byte-level BPE: any string encodes (no <unk>), and decode(encode(s)) == s."""

    def __init__(self, tokenizer):  # a tokenizers.Tokenizer
        self.tok = tokenizer

    @classmethod
    def train(cls, texts: list[str], vocab_size: int) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HFTokenizer(models.BPE())
        # add_prefix_space=False keeps encoding lossless: no space is invented at the start.
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True)

    def token_id(self, token: str) -> int | None:
        return self.tok.token_to_id(token)

    def save(self, path: str | Path) -> None:
        _atomic_write(path, self.tok.to_str())


def build_tokenizer(kind: str, texts: list[str], vocab_size: int = 1024) -> CharTokenizer | BPETokenizer:
    """Train a tokenizer of `kind` ("char" or "bpe") on `texts`; vocab_size is used by BPE only."""
    if not texts:
        raise GenlabError("cannot build a tokenizer from an empty corpus")
    if kind == "char":
        return CharTokenizer.train(texts)
    if kind == "bpe":
        if vocab_size < 256 + len(SPECIAL_TOKENS):
            raise GenlabError(f"BPE vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (bytes + special tokens)")
        return BPETokenizer.train(texts, vocab_size)
    raise GenlabError(f"unknown tokenizer kind {kind!r}; choose 'char' or 'bpe'")


def load_tokenizer(path: str | Path) -> CharTokenizer | BPETokenizer:
    """Load a `tokenizer.json` (or the folder holding one): genlab's char format or any HF tokenizer."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise GenlabError(f"no tokenizer at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GenlabError(f"{path} is not a tokenizer JSON file") from exc
    if isinstance(data, dict) and data.get("format") == CHAR_FORMAT:
        return CharTokenizer(data["vocab"])
    if isinstance(data, dict) and "model" in data:
        from tokenizers import Tokenizer as HFTokenizer

        tok = HFTokenizer.from_file(str(path))
        # Model folders often bake in fixed padding/truncation for their serving; genlab pads per batch.
        tok.no_padding()
        tok.no_truncation()
        return BPETokenizer(tok)
    raise GenlabError(f"{path} is neither a genlab char tokenizer nor a Hugging Face tokenizer.json")
