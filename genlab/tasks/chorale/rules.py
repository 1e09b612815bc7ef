"""Voice-leading rules as a sampling mask (`sampling="rules"`, the default), the chorale counterpart of the folk
task's metre grammar: the model's scores choose among the tokens that break none of the rules genlab's voice-
leading evaluation counts (genlab.evaluation.voice_leading):

- no **parallel fifths or octaves/unisons**: a voice may not start a note that, with a voice above it already
  written at this step, moves the same way from a fifth (or octave, unison) to the same interval;
- no note outside the voice's **textbook range** (voice_leading.RANGES);
- no **crossing**: a voice may not start a note above the voice over it, nor hold a note that the voice over it
  has just gone under.

The voices of a step are written soprano first, so when a voice is drawn every voice above it is known at this
step, and every pair is checked once: when its lower voice is drawn. A rest is always allowed, so a step never
runs out of tokens. `sampling="free"` leaves the model alone (only grid tokens, a hold only after a note).
"""

from __future__ import annotations

import torch

from genlab.data.chorale_tokens import HOLD_ID, VOCAB
from genlab.evaluation.voice_leading import RANGES

SAMPLINGS = ("rules", "free")
SILENT = -1  # the pitch of a voice that rests (or has not started)
# The MIDI pitch each token starts (V,), SILENT for the others.
PITCH = torch.tensor([int(t[1:]) if t.startswith("p") else SILENT for t in VOCAB])
IS_PITCH = PITCH >= 0


def parallel_mask(before: torch.Tensor, now: torch.Tensor, voice: int) -> torch.Tensor:
    """(n, V) bool: the pitch tokens that would make `voice` move in parallel fifths or octaves with a voice
    above it. before: (n, 4) pitches sounding before this step; now: (n, 4) pitches at this step (voices above
    `voice` already drawn); SILENT where a voice rests."""
    low_before = before[:, voice, None]  # (n, 1)
    bad = torch.zeros(len(before), len(VOCAB), dtype=torch.bool)
    for upper in range(voice):
        up_before, up_now = before[:, upper, None], now[:, upper, None]  # (n, 1)
        heard = (low_before >= 0) & (up_before >= 0) & (up_now >= 0) & IS_PITCH  # (n, V)
        moves = (PITCH != low_before) & (up_now != up_before)
        same_way = (PITCH > low_before) == (up_now > up_before)
        was = torch.remainder(up_before - low_before, 12)  # (n, 1)
        becomes = torch.remainder(up_now - PITCH, 12)  # (n, V)
        perfect = (was == becomes) & ((was == 7) | (was == 0))
        bad |= heard & moves & same_way & perfect
    return bad


def rules_mask(before: torch.Tensor, now: torch.Tensor, voice: int) -> torch.Tensor:
    """(n, V) bool: the tokens `voice` may not take at this step (see the module's rules)."""
    low, high = RANGES[voice]
    bad = parallel_mask(before, now, voice) | (IS_PITCH & ((PITCH < low) | (PITCH > high)))[None]
    if voice:
        above = now[:, voice - 1, None]  # (n, 1): the voice over this one, at this step
        bad |= (above >= 0) & IS_PITCH & (PITCH > above)
        crossed = ((above[:, 0] >= 0) & (above[:, 0] < before[:, voice]))[:, None]  # the held note would cross
        bad[:, HOLD_ID : HOLD_ID + 1] |= crossed
    return bad


def pitch_after(token_ids: torch.Tensor, sounding: torch.Tensor) -> torch.Tensor:
    """The pitch (n,) a voice sounds after tokens `token_ids` (n,), given what it sounded before (n,)."""
    return torch.where(token_ids == HOLD_ID, sounding, PITCH[token_ids])
