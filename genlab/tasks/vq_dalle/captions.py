"""Captions as tokens: which captions train and which are held out, a word vocabulary, one sequence layout.

Fashion-MNIST (and MNIST) captions are built from the flow task's templates and noun phrases per class
(genlab/tasks/flow/text.py: "a product photo of {a pair of sneakers}"), all nine templates with all the
phrases of a class. Held out are *combinations*: one template x phrase pair in three ("here is {a pair
of jeans}" is held out while "a photo of a pair of jeans" and "here is slacks" train), so every word of
a held-out caption was seen in training and the held-out accuracy measures whether the model composes
known words into a caption it never read. (The flow task holds out whole words instead: its MiniLM
encoder knows them from pretraining; a word vocabulary learnt from the captions cannot.) A data set whose
classes are named one image each (emoji: the Unicode name) trains on its training images' names and
holds out its test images' names.

A caption is a few words from a closed set, so a word vocabulary is the tokenizer (BPE would only split
the same words); a word never seen in training reads as <unk>.

One sequence, ids 0..K-1 the image codes, K.. the text vocabulary:
  [caption words, right-padded with <pad> to `caption_tokens`] [<image>] [image codes]
The caption that classifier-free guidance drops is [<null>, <pad>, ...].
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import torch

from genlab.data import ImageData
from genlab.errors import GenlabError
from genlab.tasks.flow.text import SYNONYMS, TEMPLATES

SPECIALS = ("<pad>", "<unk>", "<null>", "<image>")
MAX_PROMPT_CHARS = 1000  # longer input is refused before it is split into words
HOLD_OUT_EVERY = 3  # one template x phrase combination in three is held out


def combination_captions(dataset: str, held_out: bool) -> tuple[list[str], torch.Tensor]:
    """Every template x phrase caption of `dataset`'s classes on one side of the split, and each one's
    class (N,): combination (t, p) is held out when (t + p) % HOLD_OUT_EVERY == 1, so each template and
    each phrase is in training with other partners."""
    texts, labels = [], []
    templates = [*TEMPLATES[0], *TEMPLATES[1]]
    for label, (train, extra) in enumerate(SYNONYMS[dataset]):
        for (t, template), (p, phrase) in itertools.product(enumerate(templates), enumerate([*train, *extra])):
            if ((t + p) % HOLD_OUT_EVERY == 1) == held_out:
                texts.append(template.format(phrase))
                labels.append(label)
    return texts, torch.tensor(labels)


def caption_set(data: ImageData, held_out: bool) -> tuple[list[str], torch.Tensor]:
    """The training (or held-out) captions of a data set and their classes (N,), sorted by class:
    template x phrase combinations where the flow task has phrases for it, else each class's own name
    (lower-case) for the classes of the training (or test) split."""
    if data.name in SYNONYMS:
        return combination_captions(data.name, held_out)
    _, labels = data.split("test" if held_out else "train")
    classes = np.unique(labels)
    return [data.class_names[c].lower() for c in classes], torch.from_numpy(classes).long()


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
    def from_captions(cls, texts: list[str], codebook_size: int, caption_tokens: int) -> CaptionTokenizer:
        """The vocabulary of the training captions `texts` (sorted, after the special tokens)."""
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
