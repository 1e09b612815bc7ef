"""Folk tunes as event tokens: a fixed vocabulary, score -> tokens and tokens -> score (music21).

A tune is
    <tune> M:6/8 K:dorian R:jig  p7 d1/2 p5 d1/2 ... |  p0 d3/2 tie ... | ... <end>
- a header: metre, mode and tune type, the conditioning a prompt gives the model;
- per note a pitch token (`pN`: semitones above the tonic of octave 4, so every tune is in one key and the
  model learns each melodic shape once, whatever key it was printed in) or a rest `r`, then a duration token
  (`dA/B` quarter notes), then `tie` when the note is tied to the next one;
- `|` where a bar ends (the written bar lines: a pickup bar is simply a short first bar).
Grace notes are left out and a double stop keeps its top note: the tunes are monophonic melodies.
The vocabulary is fixed here (not learned from data), so a run's token ids never depend on its corpus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from genlab.errors import GenlabError

if TYPE_CHECKING:
    from music21 import key, meter, note, pitch, stream

PAD, BOS, EOS, BAR, TIE, REST = "<pad>", "<tune>", "<end>", "|", "tie", "r"
METERS = ("2/4", "3/4", "4/4", "2/2", "3/2", "6/8", "9/8", "12/8")
MODES = ("major", "minor", "dorian", "mixolydian")
TUNE_TYPES = ("reel", "jig", "hornpipe", "slipjig", "strathspey", "polka", "waltz", "march", "air", "other")
PITCH_RANGE = range(-19, 34)  # semitones from the tonic of octave 4: a fiddle's G3..A6 from any tonic, and room
# Quarter-note lengths: every 16th-note multiple up to a whole bar of 12/8, triplet (1/3, 2/3) and 32nd values.
DURATIONS = tuple(
    sorted(
        {Fraction(k, 4) for k in range(1, 25)}
        | {Fraction(k, 3) for k in (1, 2, 4)}
        | {Fraction(k, 6) for k in (1, 5)}
        | {Fraction(k, 8) for k in (1, 3, 5, 7)}
    )
)


def _dur_token(d: Fraction) -> str:
    return f"d{d.numerator}/{d.denominator}" if d.denominator != 1 else f"d{d.numerator}"


VOCAB = (
    (PAD, BOS, EOS, BAR, TIE, REST)
    + tuple(f"M:{m}" for m in METERS)
    + tuple(f"K:{m}" for m in MODES)
    + tuple(f"R:{t}" for t in TUNE_TYPES)
    + tuple(f"p{i}" for i in PITCH_RANGE)
    + tuple(_dur_token(d) for d in DURATIONS)
)
IDS = {token: i for i, token in enumerate(VOCAB)}
NOTE_HEAD_IDS = tuple(IDS[t] for t in VOCAB if t == REST or t.startswith("p"))  # one per note or rest event
DURATION_OF = {_dur_token(d): d for d in DURATIONS}
HEADER_LEN = 4  # <tune> M: K: R:


class TuneError(ValueError):
    """A corpus tune the tokens cannot hold (a metre or note length outside the vocabulary, a key change)."""


@dataclass(frozen=True)
class Header:
    meter: str = "6/8"
    mode: str = "major"
    tune_type: str = "other"

    def __post_init__(self) -> None:
        for value, allowed, what in ((self.meter, METERS, "meter"), (self.mode, MODES, "mode")):
            if value not in allowed:
                raise GenlabError(f"unknown {what} '{value}' (choose one of: {', '.join(allowed)})")
        if self.tune_type not in TUNE_TYPES:
            raise GenlabError(f"unknown tune type '{self.tune_type}' (choose one of: {', '.join(TUNE_TYPES)})")

    def tokens(self) -> list[str]:
        return [BOS, f"M:{self.meter}", f"K:{self.mode}", f"R:{self.tune_type}"]

    @property
    def bar_length(self) -> Fraction:
        """Quarter notes in one bar."""
        top, bottom = map(int, self.meter.split("/"))
        return Fraction(4 * top, bottom)


def header_of(tokens: list[str]) -> Header:
    if len(tokens) < HEADER_LEN or tokens[0] != BOS:
        raise GenlabError("a tune's tokens start with <tune> M:.. K:.. R:..")
    return Header(tokens[1][2:], tokens[2][2:], tokens[3][2:])


def encode(tokens: list[str]) -> list[int]:
    unknown = [t for t in tokens if t not in IDS]
    if unknown:
        raise GenlabError(f"unknown tune tokens: {', '.join(sorted(set(unknown))[:5])}")
    return [IDS[t] for t in tokens]


def decode(ids: list[int]) -> list[str]:
    return [VOCAB[i] for i in ids]


def meter_name(ts: meter.TimeSignature) -> str:
    name = "4/4" if ts.ratioString == "4/4" else ts.ratioString  # C and C| arrive as 4/4 and 2/2
    if name not in METERS:
        raise TuneError(f"metre {name} is not one of {', '.join(METERS)}")
    return name


def _one(items: list, what: str) -> object:
    if not items:
        raise TuneError(f"no {what}")
    if len({repr(x) for x in items}) > 1:
        raise TuneError(f"more than one {what}")
    return items[0]


def tonic_midi(k: key.Key) -> int:
    """The MIDI number of the key's tonic in octave 4 (pitch token p0)."""
    return 60 + k.tonic.pitchClass


def _note_tokens(element: note.GeneralNote, tonic: int) -> list[str]:
    from music21 import chord

    d = Fraction(element.quarterLength).limit_denominator(48)
    if d not in DURATION_OF.values():
        raise TuneError(f"note length {d} quarter notes is not in the vocabulary")
    if element.isRest:
        return [REST, _dur_token(d)]
    top = max(element.pitches, key=lambda p: p.midi) if isinstance(element, chord.Chord) else element.pitch
    step = round(top.ps) - tonic
    if step not in PITCH_RANGE:
        raise TuneError(f"pitch {top.nameWithOctave} is outside the vocabulary's range")
    tied = element.tie is not None and element.tie.type in ("start", "continue")
    return [f"p{step}", _dur_token(d)] + ([TIE] if tied else [])


def score_tokens(score: stream.Stream, tune_type: str = "other") -> list[str]:
    """A monophonic tune (one part with measures) -> its tokens, header to <end>."""
    from music21 import harmony, key, meter, stream  # music21 takes 0.3 s to import: only music runs pay

    part = score.parts[0] if score.hasPartLikeStreams() else score
    k = _one(list(part.recurse().getElementsByClass(key.Key)), "key")
    ts = _one(list(part.recurse().getElementsByClass(meter.TimeSignature)), "time signature")
    if k.mode not in MODES:
        raise TuneError(f"mode {k.mode} is not one of {', '.join(MODES)}")
    tokens = Header(meter_name(ts), k.mode, tune_type).tokens()
    tonic = tonic_midi(k)
    measures = part.getElementsByClass(stream.Measure)
    if not measures:  # music21 reads a one-bar ABC tune as loose notes
        measures = part.makeMeasures().getElementsByClass(stream.Measure)
    for measure in measures:
        events = [
            e
            for e in measure.notesAndRests
            if not isinstance(e, harmony.Harmony) and not e.duration.isGrace and e.quarterLength > 0
        ]
        if not events:
            continue
        for element in events:
            tokens += _note_tokens(element, tonic)
        tokens.append(BAR)
    if len(tokens) == HEADER_LEN:
        raise TuneError("no notes")
    return tokens + [EOS]


def body_bars(tokens: list[str]) -> list[list[str]]:
    """The tokens after the header split into bars (without `|`); stops at <end>."""
    bars, current = [], []
    for t in tokens[HEADER_LEN:]:
        if t in (EOS, PAD):
            break
        if t == BAR:
            bars.append(current)
            current = []
        else:
            current.append(t)
    return bars + ([current] if current else [])


def events(bar: list[str], strict: bool = True) -> list[tuple[int | None, Fraction, bool]]:
    """(pitch step or None for a rest, duration, tied) of each note of a bar. A malformed event (a pitch
    without a duration, a stray duration, tie or header token) raises TuneError, or with strict=False is
    skipped: a sampled tune is still written, and `genlab eval` counts the tunes that needed it."""
    out: list[tuple[int | None, Fraction, bool]] = []
    i = 0
    while i < len(bar):
        head = bar[i]
        if not (head == REST or head.startswith("p")) or i + 1 >= len(bar) or bar[i + 1] not in DURATION_OF:
            if strict:
                raise TuneError(f"malformed note at '{' '.join(bar[i : i + 2])}'")
            i += 1
            continue
        tied = i + 2 < len(bar) and bar[i + 2] == TIE
        out.append((None if head == REST else int(head[1:]), DURATION_OF[bar[i + 1]], tied))
        i += 3 if tied else 2
    return out


def tokens_score(tokens: list[str], tonic: str = "D", strict: bool = True) -> stream.Score:
    """Tokens -> a music21 score (one part, one measure per bar) in `tonic`'s key and the header's mode."""
    from music21 import meter, note, stream, tie

    header = header_of(tokens)
    k = tonic_key(tonic, header.mode)
    part = stream.Part()
    for number, bar in enumerate(body_bars(tokens), start=1):
        measure = stream.Measure(number=number)
        if number == 1:
            measure.append([meter.TimeSignature(header.meter), k])
        for step, length, tied in events(bar, strict):
            element = note.Rest() if step is None else note.Note(spelled_pitch(step, k))
            element.quarterLength = length
            if tied and step is not None:
                element.tie = tie.Tie("start")
            measure.append(element)
        part.append(measure)
    return stream.Score([part])


def tonic_name(tonic: str) -> str:
    """'D', 'F#', 'Bb' or 'B-' -> music21's name of that pitch class."""
    if not re.fullmatch(r"[A-Ga-g][#b-]?", tonic.strip()):
        raise GenlabError(f"unknown tonic '{tonic}' (a note name such as D, F#, Bb)")
    name = tonic.strip()
    return name[0].upper() + name[1:].replace("b", "-")


def tonic_key(tonic: str, mode: str) -> key.Key:
    """music21's key of `tonic` ('D', 'F#', 'Bb') in `mode`."""
    from music21 import key

    return key.Key(tonic_name(tonic), mode)


def spelled_pitch(step: int, k: key.Key) -> pitch.Pitch:
    """Pitch token pN in key k: N semitones above k's tonic in octave 4, spelled as the key spells it."""
    return _spelled(tonic_midi(k) + step, k)


def _spelled(midi: int, k: key.Key) -> pitch.Pitch:
    """The pitch `midi` spelled as the key spells it (F# in D major, not G-flat; B# stays possible)."""
    from music21 import pitch

    for scale_pitch in k.pitches:
        if scale_pitch.pitchClass == midi % 12:
            for octave in range(midi // 12 - 2, midi // 12 + 1):  # B#3 and C4 are both 60
                spelled = pitch.Pitch(scale_pitch.name, octave=octave)
                if round(spelled.ps) == midi:
                    return spelled
    return pitch.Pitch(midi=midi)


class FolkTokenizer:
    """The fixed vocabulary as a genlab tokenizer (genlab.io.tokenizers.Tokenizer), for the server's completions:
    text is the tokens, each followed by one space, so the text of a sequence is the texts of its parts."""

    vocab_size = len(VOCAB)

    def encode(self, text: str) -> list[int]:
        return encode(text.split())

    def decode(self, ids: list[int]) -> str:
        return "".join(VOCAB[i] + " " for i in ids)

    def token_id(self, token: str) -> int | None:
        return IDS.get(token)

    def save(self, path: str) -> None:
        raise GenlabError("the folk vocabulary is fixed in genlab.data.folk_tokens; it has no file")
