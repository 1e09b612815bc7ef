"""Generated chorales as a result: grids -> .mid, .musicxml (four staves, S A T B), .wav (FluidSynth's General
MIDI choir, "choir aahs") or a piano-roll .png, all through genlab.io.music."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genlab.data.chorale_tokens import REST, STEPS_PER_BAR, STEPS_PER_QUARTER, grid_score, voice_notes
from genlab.errors import GenlabError
from genlab.io.music import piano_roll, render_wav, write_midi, write_musicxml, write_png
from genlab.tasks.folk.output import check_music_path

SUFFIXES = (".mid", ".musicxml", ".wav", ".png")


def check_chorale_path(out: str | Path) -> Path:
    path = Path(out)
    if path.suffix == ".abc":
        raise GenlabError(f"--out {path}: chorales are written as {', '.join(SUFFIXES)} (ABC holds one voice)")
    return check_music_path(path)


@dataclass
class GeneratedChorales:
    """What a chorale run's `generate` returns: each chorale's grid (steps of [S, A, T, B] tokens in C major /
    A minor), its mode, and the semitones to the key it is written in."""

    grids: list[list[list[str]]]
    mode: str = "major"
    shift: int = 0

    def __len__(self) -> int:
        return len(self.grids)

    def joined(self) -> list[list[str]]:
        """All chorales on one grid, a bar of rests between them."""
        out: list[list[str]] = []
        for grid in self.grids:
            out += ([[REST] * 4] * STEPS_PER_BAR if out else []) + grid
        return out

    def score(self):  # -> music21.stream.Score
        return grid_score(self.joined(), self.mode, self.shift, title=f"Generated chorale ({self.mode})")

    def notes(self) -> list[list[tuple[float, float, int]]]:
        """(onset, length, MIDI pitch) of every note of each chorale, the four voices together, in quarters."""
        q = STEPS_PER_QUARTER
        return [
            [(s / q, n / q, m + self.shift) for v in range(4) for s, n, m in voice_notes(g, v) if m is not None]
            for g in self.grids
        ]

    def save(self, out: str | Path) -> Path:
        out = check_chorale_path(out)
        if out.suffix == ".png":
            titles = [f"chorale {i} ({self.mode}): soprano, alto, tenor, bass" for i in range(1, len(self) + 1)]
            return write_png(piano_roll(self.notes(), titles), out)
        score = self.score()
        if out.suffix == ".mid":
            return write_midi(score, out)
        if out.suffix == ".musicxml":
            return write_musicxml(score, out)
        return render_wav(score, out)
