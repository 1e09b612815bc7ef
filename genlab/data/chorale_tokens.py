"""Four-voice chorales as tokens on a 16th-note grid, the four voices interleaved per step (DeepBach's grid).

A chorale, transposed to C major or A minor, is a sequence of 16th-note steps; each step holds one token per
voice in the order soprano, alto, tenor, bass:

    <minor>  p69 p64 p60 p45  _ _ _ _  _ _ _ _  _ _ _ _  p71 p64 p59 p52 ...

- `pN`: the voice starts a note of MIDI pitch N (C major / A minor, so p60 is the tonic C of a major chorale);
- `_`: the voice holds the note it sounds (a tie across a bar line is a hold too: the grid has no bars);
- `r`: the voice rests (at every step of a rest, so `_` only ever follows a note).

The first token is the mode, the condition. A chorale starts on a downbeat: a pickup is preceded by rests to
its bar's start, so step 16k is always beat 1 of a 4/4 bar, and the grid ends at a bar line (rests after the last
note). Only 4/4 chorales whose notes all lie on the grid are kept (genlab.data.chorales counts the others).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from genlab.errors import GenlabError

if TYPE_CHECKING:
    from music21 import stream

VOICES = ("soprano", "alto", "tenor", "bass")
MODES = ("major", "minor")
LOW, HIGH = 28, 91  # MIDI pitches the vocabulary holds, after transposition (E1 to G6)
PAD, HOLD, REST = "<pad>", "_", "r"
MODE_TOKENS = tuple(f"<{m}>" for m in MODES)
VOCAB = (PAD, *MODE_TOKENS, REST, HOLD, *(f"p{m}" for m in range(LOW, HIGH + 1)))
IDS = {t: i for i, t in enumerate(VOCAB)}
PAD_ID, HOLD_ID, REST_ID = IDS[PAD], IDS[HOLD], IDS[REST]
STEPS_PER_QUARTER = 4
STEPS_PER_BAR = 16
TONIC = {"major": 0, "minor": 9}  # pitch class each mode is transposed to: C major, A minor


class ChoraleError(ValueError):
    """A score the chorale grid cannot hold (not four parts, not 4/4, off the 16th-note grid, out of range)."""


def transposition(tonic_pc: int, mode: str) -> int:
    """Semitones that take a key with tonic pitch class `tonic_pc` to C major / A minor, the smaller way."""
    shift = (TONIC[mode] - tonic_pc) % 12
    return shift - 12 if shift > 6 else shift


def pickup_steps(part: stream.Part) -> int:
    """Rest steps that put a pickup at its place in a full first bar."""
    from music21 import stream as m21stream

    measures = part.getElementsByClass(m21stream.Measure)
    if not measures:
        return 0
    first = measures[0]
    length = Fraction(first.duration.quarterLength)
    bar = Fraction(first.barDuration.quarterLength)
    return int((bar - length) * STEPS_PER_QUARTER) if 0 < length < bar else 0


def grid_step(quarters: Fraction | float, what: str) -> int:
    steps = Fraction(quarters) * STEPS_PER_QUARTER
    if steps.denominator != 1:
        raise ChoraleError(f"{what} at {float(quarters)} quarters is off the 16th-note grid")
    return int(steps)


def part_tokens(part: stream.Part, shift: int, lead: int, steps: int) -> list[str]:
    """One voice's tokens on `steps` steps: its notes transposed by `shift`, after `lead` rest steps."""
    out = [REST] * steps
    for element in part.flatten().notesAndRests:
        if element.duration.isGrace or element.quarterLength == 0:
            continue
        start = lead + grid_step(element.offset, "a note")
        length = grid_step(element.quarterLength, "a length")
        if start + length > steps:
            raise ChoraleError("a voice runs past the end of the chorale")
        if element.isRest:
            continue
        tie = element.tie.type if element.tie is not None else None
        midi = max(p.midi for p in element.pitches) + shift  # a divided voice keeps its top note
        if not LOW <= midi <= HIGH:
            raise ChoraleError(f"pitch {midi} is outside the vocabulary (MIDI {LOW} to {HIGH})")
        out[start : start + length] = [f"p{midi}" if tie in (None, "start") else HOLD] + [HOLD] * (length - 1)
    return out


def score_grid(score: stream.Score, key=None) -> tuple[str, list[list[str]]]:
    """A four-part 4/4 score -> (mode, steps of [S, A, T, B] tokens), transposed to C major / A minor. `key`
    (a music21 Key) is the chorale's key; by default music21's key analysis (Krumhansl-Schmuckler) finds it."""
    from music21 import meter

    if len(score.parts) != 4:
        raise ChoraleError(f"{len(score.parts)} parts, not four (S, A, T, B)")
    signatures = {ts.ratioString for ts in score.recurse().getElementsByClass(meter.TimeSignature)}
    if signatures != {"4/4"}:
        raise ChoraleError(f"time signature {' '.join(sorted(signatures)) or 'none'}, not 4/4")
    key = key or score.analyze("key")
    mode = key.mode if key.mode in MODES else "major"
    shift = transposition(key.tonic.pitchClass, mode)
    lead = pickup_steps(score.parts[0])
    end = lead + grid_step(score.parts[0].highestTime, "the end")
    steps = -(-end // STEPS_PER_BAR) * STEPS_PER_BAR
    voices = [part_tokens(part, shift, lead, steps) for part in score.parts]
    return mode, [list(step) for step in zip(*voices)]


def grid_tokens(mode: str, grid: list[list[str]]) -> list[str]:
    """(mode, grid) -> the token sequence: the mode, then S A T B of each step."""
    return [f"<{mode}>", *(t for step in grid for t in step)]


def tokens_grid(tokens: list[str]) -> tuple[str, list[list[str]]]:
    """The inverse of grid_tokens (a last, unfinished step is dropped)."""
    if not tokens or tokens[0] not in MODE_TOKENS:
        raise GenlabError(f"a chorale's tokens start with {' or '.join(MODE_TOKENS)}")
    body = tokens[1:]
    return tokens[0][1:-1], [body[i : i + 4] for i in range(0, len(body) - len(body) % 4, 4)]


def voice_notes(grid: list[list[str]], voice: int) -> list[tuple[int, int, int | None]]:
    """One voice's notes and rests as (start step, length in steps, MIDI pitch or None for a rest)."""
    notes: list[tuple[int, int, int | None]] = []
    for step, tokens in enumerate(grid):
        token = tokens[voice]
        if token == HOLD and notes and notes[-1][2] is not None:
            start, length, midi = notes[-1]
            notes[-1] = (start, length + 1, midi)
        elif token == REST or token == HOLD:  # a hold after a rest (or at the start) sounds as a rest
            if notes and notes[-1][2] is None:
                notes[-1] = (notes[-1][0], notes[-1][1] + 1, None)
            else:
                notes.append((step, 1, None))
        else:
            notes.append((step, 1, int(token[1:])))
    return notes


def grid_score(grid: list[list[str]], mode: str, shift: int = 0, title: str = "Chorale") -> stream.Score:
    """Steps of [S, A, T, B] tokens -> a four-part 4/4 music21 score, transposed by `shift` semitones from
    C major / A minor (0 keeps it there), with bar lines and ties where notes cross them."""
    from music21 import clef, instrument, key, metadata, meter, note, stream

    score = stream.Score()
    score.metadata = metadata.Metadata(title=title)
    tonic = (TONIC[mode] + shift) % 12
    for voice, name in enumerate(VOICES):
        part = stream.Part()
        part.append(instrument.Choir())  # General MIDI 'choir aahs': what FluidSynth plays
        part.append(clef.TrebleClef() if voice < 2 else (clef.Treble8vbClef() if voice == 2 else clef.BassClef()))
        part.append(key.Key(_tonic_name(tonic), mode))
        part.append(meter.TimeSignature("4/4"))
        for start, length, midi in voice_notes(grid, voice):
            element = note.Rest() if midi is None else note.Note(midi + shift)
            element.quarterLength = Fraction(length, STEPS_PER_QUARTER)
            part.insert(Fraction(start, STEPS_PER_QUARTER), element)
        measured = part.makeMeasures().makeTies()
        measured.partName = name.capitalize()
        score.insert(0, measured)
    return score


def _tonic_name(pitch_class: int) -> str:
    return ("C", "C#", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B")[pitch_class]


class ChoraleTokenizer:
    """The fixed vocabulary as a genlab tokenizer (genlab.io.tokenizers.Tokenizer), for the server's completions:
    text is the tokens, each followed by one space."""

    vocab_size = len(VOCAB)

    def encode(self, text: str) -> list[int]:
        unknown = [t for t in text.split() if t not in IDS]
        if unknown:
            raise GenlabError(f"'{unknown[0]}' is not a chorale token (<major>, <minor>, r, _, p{LOW} to p{HIGH})")
        return [IDS[t] for t in text.split()]

    def decode(self, ids: list[int]) -> str:
        return "".join(VOCAB[i] + " " for i in ids)

    def token_id(self, token: str) -> int | None:
        return IDS.get(token)

    def save(self, path: str) -> None:
        raise GenlabError("the chorale vocabulary is fixed in genlab.data.chorale_tokens; it has no file")
