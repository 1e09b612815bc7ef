"""Tokenizers: a character tokenizer and byte-level BPE (Hugging Face `tokenizers`).

Both save to one Hugging Face `tokenizer.json`, so `transformers.AutoTokenizer` opens an exported
model folder; `load_tokenizer` tells them apart by the file's contents, so a run directory (or a
Hugging Face model folder) only needs that one file. It also reads the char format genlab wrote
before ({"format": "genlab-char", "vocab": [...]}), so older runs still load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from genlab.errors import GenlabError
from genlab.io.files import atomic_write_text

PAD, UNK, BOS, EOS, MASK = "<pad>", "<unk>", "<bos>", "<eos>", "<mask>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS, MASK)
CHAR_FORMAT = "genlab-char"  # the char tokenizer's file before it became a Hugging Face tokenizer.json
# The char tokenizer's pre-tokenizer pattern: each character on its own. Not ".", which does not match a
# newline in the regex engine `tokenizers` uses: "\n\n" would stay one piece and encode as one <unk>.
CHAR_SPLIT = r"[\s\S]"


class Tokenizer(Protocol):
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def token_id(self, token: str) -> int | None: ...
    def save(self, path: str | Path) -> None: ...


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
        atomic_write_text(path, self.to_hf().to_str())

    def to_hf(self):  # -> tokenizers.Tokenizer
        """The same tokenizer in Hugging Face `tokenizers`: split into characters, look each up in the
        vocabulary (unseen -> <unk>), join them back on decode. Unlike `encode`, it reads a special
        token written out in the text ("a <mask> b") as that token, as every HF tokenizer does: what
        fill-mask pipelines rely on."""
        from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
        from tokenizers import Tokenizer as HFTokenizer

        tok = HFTokenizer(models.WordLevel(vocab=self.stoi, unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(CHAR_SPLIT), behavior="isolated")
        tok.decoder = decoders.Fuse()  # concatenate: WordLevel's default decoder would put spaces between
        # Special, so decode(skip_special_tokens=True) drops them as `decode` does; they keep ids 0..4.
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
        return tok


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
        atomic_write_text(path, self.tok.to_str())


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
    if isinstance(data, dict) and data.get("format") == CHAR_FORMAT:  # written before genlab used HF's format
        return CharTokenizer(data["vocab"])
    chars = _char_vocab(data)
    if chars is not None:
        return CharTokenizer(chars)
    if isinstance(data, dict) and "model" in data:
        from tokenizers import Tokenizer as HFTokenizer

        try:
            tok = HFTokenizer.from_file(str(path))
        except Exception as exc:  # the Rust library raises plain Exceptions, their message a serde error
            reason = " ".join(str(exc).split())
            raise GenlabError(f"{path} is not a valid Hugging Face tokenizer.json: {reason}") from None
        # Model folders often bake in fixed padding/truncation for their serving; genlab pads per batch.
        tok.no_padding()
        tok.no_truncation()
        return BPETokenizer(tok)
    raise GenlabError(f"{path} is neither a genlab char tokenizer nor a Hugging Face tokenizer.json")


def _char_vocab(data: object) -> list[str] | None:
    """The characters, by id, of a tokenizer.json that CharTokenizer.save wrote; None for any other file.
    Read back as a CharTokenizer (not a BPETokenizer wrapping it) so it encodes a written-out "<mask>"
    as characters, exactly as before it was saved."""
    if not isinstance(data, dict):
        return None
    model, pre = data.get("model"), data.get("pre_tokenizer")
    if not (
        isinstance(model, dict)
        and model.get("type") == "WordLevel"
        and model.get("unk_token") == UNK
        and isinstance(model.get("vocab"), dict)
        and data.get("normalizer") is None
        and data.get("post_processor") is None
        and isinstance(pre, dict)
        and pre.get("type") == "Split"
        and pre.get("pattern") == {"Regex": CHAR_SPLIT}
        and pre.get("behavior") == "Isolated"
        and not pre.get("invert")
    ):
        return None
    vocab: dict = model["vocab"]
    itos = sorted(vocab, key=lambda t: vocab[t])
    n = len(SPECIAL_TOKENS)
    if (
        [vocab[t] for t in itos] != list(range(len(itos)))
        or tuple(itos[:n]) != SPECIAL_TOKENS
        or any(len(t) != 1 for t in itos[n:])
    ):
        return None
    return itos[n:]
