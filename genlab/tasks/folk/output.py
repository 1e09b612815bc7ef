"""Generated tunes as a result: tokens -> .abc, .mid, .musicxml, .wav (FluidSynth) or a piano-roll .png."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from genlab.data.folk_abc import abc_text
from genlab.data.folk_tokens import body_bars, events, tokens_score, tonic_key, tonic_midi
from genlab.errors import GenlabError
from genlab.io.files import atomic_write_text
from genlab.io.music import check_renderer, piano_roll, render_wav, write_midi, write_musicxml, write_png

SUFFIXES = (".abc", ".mid", ".musicxml", ".wav", ".png")


def check_music_path(out: str | Path) -> Path:
    """An output file genlab can write tunes to, checked before any sampling starts."""
    out = Path(out)
    if out.suffix not in SUFFIXES:
        raise GenlabError(f"--out {out} must end in one of {', '.join(SUFFIXES)}")
    if not out.parent.is_dir():
        raise GenlabError(f"--out {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise GenlabError(f"--out {out} is a folder")
    if out.suffix == ".wav":
        check_renderer()
    return out


@dataclass
class GeneratedTunes:
    """What a folk run's `generate` returns: each tune's tokens (header first) and the key it is written in."""

    tunes: list[list[str]]
    tonic: str = "D"

    def __len__(self) -> int:
        return len(self.tunes)

    def abc(self) -> str:
        """Every tune as ABC, one X: number each."""
        return "\n".join(abc_text(t, self.tonic, i, f"Generated tune {i}") for i, t in enumerate(self.tunes, 1))

    def score(self):  # -> music21.stream.Score
        """One part, the tunes one after another (each from its own time signature and key), on a violin."""
        from music21 import instrument, stream

        part = stream.Part([instrument.Violin()])
        number = 0
        for tune in self.tunes:
            for measure in tokens_score(tune, self.tonic, strict=False).parts[0].getElementsByClass(stream.Measure):
                number += 1
                measure.number = number
                part.append(measure)
        return stream.Score([part])

    def notes(self) -> list[list[tuple[float, float, int]]]:
        """(onset, length, MIDI pitch) per note of each tune, in quarter notes from its start."""
        rolls = []
        for tune in self.tunes:
            base, onset, roll = tonic_midi(tonic_key(self.tonic, tune[2][2:])), Fraction(0), []
            for bar in body_bars(tune):
                for step, length, _ in events(bar, strict=False):
                    if step is not None:
                        roll.append((float(onset), float(length), base + step))
                    onset += length
            rolls.append(roll)
        return rolls

    def save(self, out: str | Path) -> Path:
        out = check_music_path(out)
        if out.suffix == ".abc":
            return atomic_write_text(out, self.abc())
        if out.suffix == ".png":
            titles = [f"tune {i}: {' '.join(t[1:4])} in {self.tonic}" for i, t in enumerate(self.tunes, 1)]
            return write_png(piano_roll(self.notes(), titles), out)
        score = self.score()
        if out.suffix == ".mid":
            return write_midi(score, out)
        if out.suffix == ".musicxml":
            return write_musicxml(score, out)
        return render_wav(score, out)
