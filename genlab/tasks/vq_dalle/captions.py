"""Captions as tokens: a word vocabulary from the training captions, and one sequence layout.

The captions are the flow task's (genlab/tasks/flow/text.py: templates x synonyms per class; training
sees the `train` ones only). DALL-E reads a caption as text tokens in the same sequence as the image's
tokens; here a caption is a few words from a closed set, so a word vocabulary is the tokenizer (BPE
would only split the same words). A word never seen in training (a held-out caption's "jeans") reads as
<unk>: whether the model still draws the right class from the words around it is what the held-out
caption accuracy measures.

One sequence, ids 0..K-1 the image codes, K.. the text vocabulary:
  [caption words, right-padded with <pad> to `caption_tokens`] [<image>] [49 image codes]
The caption that classifier-free guidance drops is [<null>, <pad>, ...].
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from genlab.errors import GenlabError
from genlab.tasks.flow.text import captions

SPECIALS = ("<pad>", "<unk>", "<null>", "<image>")
MAX_PROMPT_CHARS = 1000  # longer input is refused before it is split into words


def words(text: str) -> list[str]:
    """Lower-case words; hyphenated ones stay whole ("t-shirt"), other punctuation goes."""
    return re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", text.lower())


class CaptionTokenizer:
    """Words <-> ids after the codebook's K ids; `encode` gives a caption's fixed-length row."""

    def __init__(self, vocabulary: list[str], codebook_size: int, caption_tokens: int):
        self.vocabulary, self.offset, self.length = list(vocabulary), codebook_size, caption_tokens
        self.ids = {word: codebook_size + i for i, word in enumerate(self.vocabulary)}
        self.pad, self.unk, self.null, self.image = (self.ids[s] for s in SPECIALS)

    @classmethod
    def from_captions(cls, dataset: str, codebook_size: int, caption_tokens: int) -> CaptionTokenizer:
        """The vocabulary of `dataset`'s training captions (sorted, after the special tokens)."""
        texts, _ = captions(dataset, held_out=False)
        vocabulary = sorted({w for text in texts for w in words(text)})
        return cls([*SPECIALS, *vocabulary], codebook_size, caption_tokens)

    @property
    def vocab_size(self) -> int:
        """Every id the sequence uses: the K codes, then the text vocabulary."""
        return self.offset + len(self.vocabulary)

    def encode(self, prompt: str) -> torch.Tensor:
        """A prompt -> its caption row (caption_tokens,) of ids; empty or too long is one line of error."""
        if len(prompt) > MAX_PROMPT_CHARS:
            raise GenlabError(f"--prompt is {len(prompt)} characters; the model reads at most {MAX_PROMPT_CHARS}")
        found = words(prompt)
        if not found:
            raise GenlabError("--prompt is empty (it has no words)")
        if len(found) > self.length:
            raise GenlabError(f"--prompt has {len(found)} words; the model's caption context holds {self.length}")
        ids = [self.ids.get(w, self.unk) for w in found]
        return torch.tensor(ids + [self.pad] * (self.length - len(ids)))

    def null_caption(self) -> torch.Tensor:
        """The caption that stands for "no caption" (classifier-free guidance): (caption_tokens,)."""
        return torch.tensor([self.null] + [self.pad] * (self.length - 1))

    def unknown_words(self, prompt: str) -> list[str]:
        return [w for w in words(prompt) if w not in self.ids]

    def embed(self, texts: list[str]) -> Rows:
        """Captions -> their rows (N, caption_tokens): the flow task's CaptionBank reads captions through
        an encoder's `embed(texts).vectors`; for a token model the "vectors" are the rows of ids."""
        return Rows(torch.stack([self.encode(text) for text in texts]))


@dataclass(frozen=True)
class Rows:
    vectors: torch.Tensor  # (N, caption_tokens) ids
