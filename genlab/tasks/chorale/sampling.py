"""Sampling chorales token by token, the four voices in turn (S A T B per 16th-note step), with a KV cache.

Only grid tokens may be drawn (a pitch, `_`, `r`), and `_` only where the voice sounds a note (a rest is written
`r` at every step). With `sampling="rules"` (the default) the voice-leading rules of genlab.tasks.chorale.rules
also hold: no parallel fifths or octaves, no note out of its voice's range, no crossing.

To harmonise a melody the soprano's tokens are not drawn but forced: the melody's token goes into the context
at each soprano slot and only alto, tenor and bass are sampled (a prompt's opening steps are forced the same
way), so the soprano comes out exactly as given. A chorale longer than the context goes on with a window that
jumps by half its bars at a bar line (the cache is rebuilt from the mode token and the bars kept).
"""

from __future__ import annotations

import torch

from genlab.data.chorale_tokens import HOLD_ID, IDS, VOCAB
from genlab.models.generation import check_finite, sample_finite
from genlab.models.transformer import KVBuffer, Transformer
from genlab.tasks.chorale.rules import SILENT, pitch_after, rules_mask

GRID_IDS = [i for i, t in enumerate(VOCAB) if t in ("_", "r") or t.startswith("p")]
BAR = 64  # tokens of a bar: 16 steps x 4 voices


class Context:
    """The window the model sees: the mode token and the latest bars of every row, in a KV cache."""

    def __init__(self, model: Transformer, mode_id: int, n: int):
        self.model, self.mode_id, self.n = model, mode_id, n
        self.bars = (model.config.block_size - 1) // BAR
        self.start = 0  # the first body token in view

    def reset(self, body: torch.Tensor) -> torch.Tensor:
        """A fresh cache; returns the ids (n, L) still to feed: the mode then body[:, start:]."""
        self.cache = KVBuffer(self.model.config, self.n, dtype=self.model.tok_emb.weight.dtype)
        mode = torch.full((self.n, 1), self.mode_id, dtype=torch.long)
        return torch.cat([mode, body[:, self.start :]], dim=1)

    def logits(self, pending: torch.Tensor, position: int, body: torch.Tensor) -> torch.Tensor:
        """Scores (n, V) for body position `position`, after feeding `pending` (n, L)."""
        if position - self.start == self.bars * BAR:  # the window is full, at a bar line: jump
            self.start += max(1, self.bars // 2) * BAR
            pending = self.reset(body[:, :position])
        return self.model(pending, kv_cache=self.cache, use_cache=True).logits[:, -1]


def allowed_mask(before: torch.Tensor, now: torch.Tensor, voice: int, rules: bool) -> torch.Tensor:
    """(n, V) bool: grid tokens only, a hold only in rows whose voice sounds a note, and with `rules` none that
    breaks a voice-leading rule. before, now: (n, 4) pitches sounding before / at this step (SILENT: a rest)."""
    mask = torch.zeros(len(before), len(VOCAB), dtype=torch.bool)
    mask[:, GRID_IDS] = True
    mask[:, HOLD_ID] = before[:, voice] != SILENT
    return mask & ~rules_mask(before, now, voice) if rules else mask


def fixed_ids(given: list[list[str | None]] | None, n: int, length: int) -> torch.Tensor | None:
    """Tokens given in advance (per row, per body position; None: to draw) -> ids (n, length), -1 where free."""
    if given is None:
        return None
    out = torch.full((n, length), -1, dtype=torch.long)
    for row, tokens in enumerate(given):
        for position, token in enumerate(tokens[:length]):
            if token is not None:
                out[row, position] = IDS[token]
    return out


def soprano_given(sopranos: list[list[str]]) -> list[list[str | None]]:
    """Per row a soprano (one token per step) -> the given tokens: the soprano's slot of every step."""
    return [[t for token in soprano for t in (token, None, None, None)] for soprano in sopranos]


def draw(logits: torch.Tensor, allowed: torch.Tensor, temperature: float, top_k, generator) -> torch.Tensor:
    """One token per row among the allowed ones: logits, allowed (n, V) -> ids (n,)."""
    check_finite(logits)
    logits = logits.masked_fill(~allowed, float("-inf"))
    return logits.argmax(-1) if temperature == 0 else sample_finite(logits, temperature, top_k, None, generator)


@torch.inference_mode()
def sample_grids(
    model: Transformer,
    mode: str,
    steps: int,
    n: int,
    seed: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    given: list[list[str | None]] | None = None,
    sampling: str = "rules",
) -> list[list[list[str]]]:
    """n grids of `steps` steps ([S, A, T, B] tokens each). `given` (per row, per position of the S A T B
    sequence: a token, or None to draw one) forces tokens: a soprano to harmonise, the opening of a prompt.
    sampling: "rules" (the voice-leading rules hold for drawn tokens) or "free" (the model alone)."""
    fixed = fixed_ids(given, n, steps * 4)  # (n, 4 x steps), -1 where the model draws
    generator = torch.Generator().manual_seed(seed)
    body = torch.zeros((n, steps * 4), dtype=torch.long)  # (n, 4 x steps): filled as it is drawn
    pitches = torch.full((n, 4), SILENT)  # (n, 4): what each voice sounds, this step's drawn voices included
    before = pitches.clone()
    context = Context(model, IDS[f"<{mode}>"], n)
    pending = context.reset(body[:, :0])
    was_training = model.training
    model.eval()
    try:
        for position in range(steps * 4):
            voice = position % 4
            if voice == 0:
                before = pitches.clone()  # (n, 4): what sounded before this step
            logits = context.logits(pending, position, body)  # (n, V)
            want = None if fixed is None else fixed[:, position]  # (n,)
            if want is None or bool((want < 0).any()):
                allowed = allowed_mask(before, pitches, voice, sampling == "rules")
                nxt = draw(logits, allowed, temperature, top_k, generator)
                want = nxt if want is None else torch.where(want < 0, nxt, want)
            body[:, position] = want
            pitches[:, voice] = pitch_after(want, pitches[:, voice])
            pending = want[:, None]  # (n, 1): the cache holds the rest
    finally:
        model.train(was_training)
    return [[[VOCAB[i] for i in row[s : s + 4]] for s in range(0, len(row), 4)] for row in body.tolist()]
