"""Metre-constrained sampling: at each step only the tokens that keep a tune well formed may be drawn.

A pitch or rest is followed by a duration that fits in what is left of the bar (and leaves a remainder the
vocabulary's lengths can still fill), a bar line comes exactly when the bar is full (the first bar may stop
early: a pickup), `tie` only after a pitch's duration, and `<end>` only at a bar line. The model's scores
decide among the allowed tokens; the others get probability zero. So every sampled tune reads back and fills
its bars by construction, and `genlab eval` measures what the model chose, not whether it kept count.
"""

from __future__ import annotations

from fractions import Fraction

import torch

from genlab.data.folk_tokens import BAR, DURATION_OF, EOS, IDS, REST, TIE, VOCAB, header_of
from genlab.errors import GenlabError
from genlab.models.generation import check_finite, sample_finite
from genlab.models.transformer import KVBuffer, Transformer
from genlab.tasks.folk.process import sample_tunes

HEADS = [IDS[t] for t in VOCAB if t == REST or t.startswith("p")]
STEP = Fraction(1, 24)  # every length is a multiple: 1/8 = 3 steps, 1/6 = 4 steps
UNREACHABLE = {1, 2, 5}  # remainders (in 1/24ths) that no sum of the vocabulary's lengths fills
MIN_BARS = 4  # a tune may end after this many bars


class BarGrammar:
    """Where one tune stands in its bar, and which token ids may come next (a bool mask over the vocabulary)."""

    def __init__(self, prefix: list[str]):
        self.bar = header_of(prefix).bar_length
        self.filled, self.bars, self.expect, self.pitched = Fraction(0), 0, "event", False
        for token in prefix[4:]:
            self.advance(token)

    def _fits(self, length: Fraction) -> bool:
        left = (self.bar - self.filled - length) / STEP
        return left >= 0 and left.denominator == 1 and int(left) not in UNREACHABLE

    def allowed(self) -> torch.Tensor:
        mask = torch.zeros(len(VOCAB), dtype=torch.bool)
        if self.expect == "duration":
            for token, length in DURATION_OF.items():
                mask[IDS[token]] = self._fits(length)
            return mask
        full = self.filled == self.bar
        if not full:
            mask[HEADS] = True
        if full or (self.bars == 0 and self.filled > 0 and self.expect == "after"):  # a pickup may end early
            mask[IDS[BAR]] = True
        if self.expect == "after" and self.pitched:
            mask[IDS[TIE]] = True
        if self.filled == 0 and self.bars >= MIN_BARS:
            mask[IDS[EOS]] = True
        return mask

    def advance(self, token: str) -> None:
        if token == BAR:
            self.filled, self.bars, self.expect = Fraction(0), self.bars + 1, "event"
        elif token in DURATION_OF:
            self.filled += DURATION_OF[token]
            self.expect = "after"
        elif token == TIE:
            self.expect = "event"
        elif token == REST or token.startswith("p"):
            self.expect, self.pitched = "duration", token != REST


@torch.inference_mode()
def sample_in_metre(
    model: Transformer,
    prefix: list[str],
    n: int,
    seed: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    max_tokens: int = 384,
) -> list[list[str]]:
    """n tunes continuing `prefix`, each token drawn among those the grammar allows; a tune ends at its <end>,
    after max_tokens new tokens, or where the model's context is full (a fixed header must stay in view)."""
    block = model.config.block_size
    grammars = [BarGrammar(prefix) for _ in range(n)]
    tunes = [list(prefix) for _ in range(n)]
    generator = torch.Generator().manual_seed(seed)
    cache = KVBuffer(model.config, n, dtype=model.tok_emb.weight.dtype)
    was_training = model.training
    model.eval()
    ids = torch.tensor([[IDS[t] for t in prefix]] * n)  # (n, P)
    done = [False] * n
    try:
        for _ in range(min(max_tokens, block - len(prefix))):
            logits = model(ids, kv_cache=cache, use_cache=True).logits[:, -1]  # (n, V)
            check_finite(logits)
            allowed = torch.stack([g.allowed() for g in grammars])  # (n, V)
            logits = logits.masked_fill(~allowed, float("-inf"))
            nxt = logits.argmax(-1) if temperature == 0 else sample_finite(logits, temperature, top_k, None, generator)
            for row, token_id in enumerate(nxt.tolist()):
                if not done[row]:
                    tunes[row].append(VOCAB[token_id])
                    grammars[row].advance(VOCAB[token_id])
                    done[row] = token_id == IDS[EOS]
            if all(done):
                break
            ids = nxt[:, None]  # (n, 1): the cache holds the rest
    finally:
        model.train(was_training)
    return tunes


SAMPLINGS = ("metre", "free")


def draw_tunes(
    model: Transformer,
    prefix: list[str],
    n: int,
    seed: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    max_tokens: int = 384,
    sampling: str = "metre",
) -> list[list[str]]:
    """n tunes by metre-constrained sampling ("metre"), or by the shared decoder unconstrained ("free": what
    the model alone does, past the context too)."""
    if sampling not in SAMPLINGS:
        raise GenlabError(f"unknown sampling '{sampling}' (choose {' or '.join(SAMPLINGS)})")
    draw = sample_in_metre if sampling == "metre" else sample_tunes
    return draw(model, prefix, n, seed, temperature, top_k, max_tokens)
