"""Metre-constrained sampling: at each step only the tokens that keep a tune well formed may be drawn.

A pitch or rest is followed by a duration that fits in what is left of the bar (and leaves a remainder the
vocabulary's lengths can still fill), a bar line comes exactly when the bar is full (the first bar may stop
early: a pickup), `tie` only after a pitch's duration, and `<end>` only at a bar line. The model's scores
decide among the allowed tokens; the others get probability zero. So every sampled tune reads back and fills
its bars by construction, and `genlab eval` measures what the model chose, not whether it kept count.

Metre guidance: 6/8 and 3/4 (and 4/4 and 2/2, 12/8 and 3/2) have bars of the same length and differ only in
how a bar's notes group into beats, which a small model blurs. With `guidance` w > 0 each tune is also run
under its metre's twin, and the scores are pushed away from it: logits = l(metre) + w (l(metre) - l(twin)),
the contrastive form of classifier-free guidance (no retraining: the twin is an ordinary header).
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
# The beat of each metre in quarter notes: with `beats`, a note that starts between two beats ends by the next one
# (real tunes keep this in over 99.7 % of their notes after the first bar), so 6/8's and 3/4's bars group apart.
BEATS = {"2/4": 1, "3/4": 1, "4/4": 1, "2/2": 2, "3/2": 2, "6/8": Fraction(3, 2), "9/8": Fraction(3, 2)}
BEATS["12/8"] = Fraction(3, 2)
TWINS = {"3/4": "6/8", "6/8": "3/4", "4/4": "2/2", "2/2": "4/4", "3/2": "12/8", "12/8": "3/2"}  # same bar length


class BarGrammar:
    """Where one tune stands in its bar, and which token ids may come next (a bool mask over the vocabulary)."""

    def __init__(self, prefix: list[str], beats: bool = False):
        self.bar = header_of(prefix).bar_length
        self.beat = Fraction(BEATS[header_of(prefix).meter]) if beats else None
        self.filled, self.bars, self.expect, self.pitched = Fraction(0), 0, "event", False
        self.bar_tokens, self.longest_bar = 0, 0  # tokens of the bar so far, and of the longest bar yet
        for token in prefix[4:]:
            self.advance(token)

    def _fits(self, length: Fraction) -> bool:
        left = (self.bar - self.filled - length) / STEP
        return left >= 0 and left.denominator == 1 and int(left) not in UNREACHABLE and self._keeps_beats(length)

    def _keeps_beats(self, length: Fraction) -> bool:
        """No note from between two beats across the next one, and the rest of a beat left fillable (the first
        bar, a pickup whose beats are unknown, is free)."""
        if self.beat is None or self.bars == 0:
            return True
        start, end = self.filled, self.filled + length
        if start % self.beat and end > (start // self.beat + 1) * self.beat:
            return False
        gap = (-end) % self.beat / STEP  # to the next beat
        return gap.denominator == 1 and int(gap) not in UNREACHABLE

    def allowed(self, tokens_left: int) -> torch.Tensor:
        """The tokens that may come next, given how many the tune may still take: at a bar line with too few
        left for another bar as long as its longest one, only <end> (a tune stops on a bar line, not cut)."""
        mask = torch.zeros(len(VOCAB), dtype=torch.bool)
        if self.filled == 0 and self.bars >= 1 and tokens_left <= self.longest_bar + 1:
            mask[IDS[EOS]] = True
            return mask
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
        self.bar_tokens += 1
        if token == BAR:
            self.longest_bar = max(self.longest_bar, self.bar_tokens)
            self.filled, self.bars, self.expect, self.bar_tokens = Fraction(0), self.bars + 1, "event", 0
        elif token in DURATION_OF:
            self.filled += DURATION_OF[token]
            self.expect = "after"
        elif token == TIE:
            self.expect = "event"
        elif token == REST or token.startswith("p"):
            self.expect, self.pitched = "duration", token != REST


def twin_prefix(prefix: list[str]) -> list[str] | None:
    """The prefix under its metre's twin (same bar length, other beats), or None for a metre without one."""
    twin = TWINS.get(prefix[1][2:])
    return None if twin is None else [prefix[0], f"M:{twin}", *prefix[2:]]


def guided(logits: torch.Tensor, n: int, guidance: float) -> torch.Tensor:
    """logits (n or 2n, V): the first n rows under the wanted metre, any others under its twin -> (n, V)."""
    if len(logits) == n:
        return logits
    return logits[:n] + guidance * (logits[:n] - logits[n:])


@torch.inference_mode()
def sample_in_metre(
    model: Transformer,
    prefix: list[str],
    n: int,
    seed: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    max_tokens: int = 384,
    guidance: float = 0.0,
    beats: bool = False,
) -> list[list[str]]:
    """n tunes continuing `prefix`, each token drawn among those the grammar allows (`beats`: with the metre's
    beat grouping too), its scores guided away from the metre's twin by `guidance`; a tune ends at its <end>,
    after max_tokens new tokens, or where the model's context is full (a fixed header must stay in view)."""
    twin = twin_prefix(prefix) if guidance else None
    rows = [prefix] * n + ([twin] * n if twin else [])  # the twin rows decode the same tokens
    grammars = [BarGrammar(prefix, beats) for _ in range(n)]
    tunes = [list(prefix) for _ in range(n)]
    generator = torch.Generator().manual_seed(seed)
    cache = KVBuffer(model.config, len(rows), dtype=model.tok_emb.weight.dtype)
    was_training = model.training
    model.eval()
    ids = torch.tensor([[IDS[t] for t in row] for row in rows])  # (n or 2n, P)
    budget = min(max_tokens, model.config.block_size - len(prefix))
    try:
        for left in range(budget, 0, -1):
            logits = guided(model(ids, kv_cache=cache, use_cache=True).logits[:, -1], n, guidance)  # (n, V)
            check_finite(logits)
            allowed = torch.stack([g.allowed(left) for g in grammars])  # (n, V)
            logits = logits.masked_fill(~allowed, float("-inf"))
            nxt = logits.argmax(-1) if temperature == 0 else sample_finite(logits, temperature, top_k, None, generator)
            for row, token_id in enumerate(nxt.tolist()):
                if tunes[row][-1] != EOS:
                    tunes[row].append(VOCAB[token_id])
                    grammars[row].advance(VOCAB[token_id])
            if all(t[-1] == EOS for t in tunes):
                break
            ids = nxt.repeat(len(rows) // n)[:, None]  # (n or 2n, 1): the cache holds the rest
    finally:
        model.train(was_training)
    return tunes


SAMPLINGS = ("metre", "beats", "free")  # beats: the metre grammar and each metre's beat grouping


def check_sampling(sampling: str) -> str:
    if sampling not in SAMPLINGS:
        raise GenlabError(f"unknown sampling '{sampling}' (choose {', '.join(SAMPLINGS)})")
    return sampling


def check_guidance(guidance: float, sampling: str) -> float:
    if not 0 <= guidance <= 10:
        raise GenlabError(f"metre guidance must be in [0, 10], got {guidance}")
    if sampling == "free" and guidance:
        raise GenlabError("metre guidance works with metre sampling only (the grammar keeps the twin's bars too)")
    return guidance


def draw_tunes(
    model: Transformer,
    prefix: list[str],
    n: int,
    seed: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    max_tokens: int = 384,
    sampling: str = "metre",
    guidance: float = 0.0,
) -> list[list[str]]:
    """n tunes by metre-constrained sampling ("metre"; "beats": with each metre's beat grouping; both optionally
    guided away from the metre's twin), or by the
    shared decoder unconstrained ("free": what the model alone does, past the context too)."""
    check_guidance(guidance, check_sampling(sampling))
    if sampling == "free":
        return sample_tunes(model, prefix, n, seed, temperature, top_k, max_tokens)
    return sample_in_metre(model, prefix, n, seed, temperature, top_k, max_tokens, guidance, sampling == "beats")
