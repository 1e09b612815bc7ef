"""Token files: a corpus split tokenized once into a flat `.bin` array, read back memory-mapped.

The file is the records' tokens end to end, each record followed by a newline, written in chunks, so
neither writing nor training ever holds more than a chunk of ids in memory: a corpus larger than RAM
streams from disk. uint16 holds any vocabulary under 65,536 ids at half the size of uint32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genlab.data.text import TEXT_CORPORA, load_text_corpus
from genlab.errors import GenlabError
from genlab.io.files import atomic_write
from genlab.io.tokenizers import Tokenizer

CHUNK_RECORDS = 4096  # records tokenized per write


def corpus_names(corpus: str | list[str]) -> list[str]:
    return [corpus] if isinstance(corpus, str) else list(corpus)


def corpus_source(corpus: str | list[str]) -> str:
    """Where each part of a corpus comes from, for logs and the cost ledger."""
    return "; ".join(
        f"{n} from {TEXT_CORPORA[n].source}" if n in TEXT_CORPORA else f"user text {n}" for n in corpus_names(corpus)
    )


def corpus_texts(corpus: str | list[str], split: str, limit_chars: int = 0) -> list[str]:
    """The records of one split of every named corpus, in order; at most `limit_chars` characters (0 = all)."""
    texts = [t for name in corpus_names(corpus) for t in load_text_corpus(name, split)]
    if limit_chars:
        kept, total = [], 0
        for text in texts:
            if total >= limit_chars:
                break
            kept.append(text[: limit_chars - total])
            total += len(kept[-1])
        texts = kept
    return texts


def token_dtype(vocab_size: int) -> type:
    return np.uint16 if vocab_size < 2**16 else np.uint32


def write_tokens(path: Path, texts: list[str], tokenizer: Tokenizer) -> int:
    """Tokenize `texts` (one newline after each) into `path`; returns the number of tokens."""
    dtype = token_dtype(tokenizer.vocab_size)
    count = 0

    def write(tmp: Path) -> None:  # renamed into place by atomic_write: never a half-written token file
        nonlocal count
        with open(tmp, "wb") as fh:
            for start in range(0, len(texts), CHUNK_RECORDS):
                ids = [i for text in texts[start : start + CHUNK_RECORDS] for i in tokenizer.encode(text + "\n")]
                np.asarray(ids, dtype=dtype).tofile(fh)
                count += len(ids)

    atomic_write(path, write)
    return count


def open_tokens(path: Path, vocab_size: int) -> np.ndarray:
    """The token file as a read-only memory map: (N,) ids."""
    if not path.is_file():
        raise GenlabError(f"no token file {path}")
    if path.stat().st_size == 0:
        raise GenlabError(
            f"{path.name}: this split of the corpus holds no text (a corpus needs enough lines "
            "for the train, validation and test splits)"
        )
    return np.memmap(path, dtype=token_dtype(vocab_size), mode="r")


def windows(tokens: np.ndarray, starts: torch.Tensor, length: int) -> torch.Tensor:
    """Rows tokens[s : s + length] for each start: (B, length) int64 ids."""
    return torch.from_numpy(np.stack([tokens[s : s + length] for s in starts.tolist()]).astype(np.int64))


def spaced_starts(num_tokens: int, length: int, count: int) -> torch.Tensor:
    """`count` window starts spread evenly over the file: a fixed, repeatable evaluation set."""
    if num_tokens < length:
        raise GenlabError(f"the split has {num_tokens} tokens, fewer than one block of {length}")
    return torch.linspace(0, num_tokens - length, count).long()
