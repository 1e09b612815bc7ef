"""Voice-leading counts of four-voice chorales on the 16th-note grid (genlab.data.chorale_tokens), the rules a
harmony teacher marks first, each as a rate per 100 beats (quarter notes) so pieces of any length compare:

- **parallel fifths / octaves**: between two consecutive moments where some voice starts a note, a pair of
  voices that both move in the same direction and stand a fifth (7 semitones modulo the octave) or an octave or
  unison (0 modulo 12) apart both before and after; one count per pair and moment;
- **range violations**: notes (onsets) outside the voice's compass (RANGES: the textbook SATB ranges);
- **voice crossings**: beats at whose start a voice sounds below the voice under it (alto below tenor, ...),
  one count per beat and adjacent pair.

The grids are the transposed ones (C major / A minor), for Bach's chorales and generated ones alike.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

HOLD, REST = "_", "r"
RANGES = ((60, 79), (55, 74), (48, 67), (40, 60))  # S C4-G5, A G3-D5, T C3-G4, B E2-C4 (MIDI)
STEPS_PER_BEAT = 4


def sounding(grid: list[list[str]]) -> list[list[int | None]]:
    """The MIDI pitch each voice sounds at each step (None: silent): steps x 4."""
    now: list[int | None] = [None] * 4
    out = []
    for step in grid:
        now = [now[v] if t == HOLD else (None if t == REST else int(t[1:])) for v, t in enumerate(step)]
        out.append(list(now))
    return out


def parallels(grid: list[list[str]]) -> tuple[int, int]:
    """(parallel fifths, parallel octaves and unisons) of a grid."""
    states = sounding(grid)
    moments = [states[i] for i, step in enumerate(grid) if any(t.startswith("p") for t in step)]
    fifths = octaves = 0
    for before, after in zip(moments, moments[1:]):
        for low, high in combinations(range(3, -1, -1), 2):  # (bass, tenor) ... every pair, lower voice first
            a, b, c, d = before[low], before[high], after[low], after[high]
            if None in (a, b, c, d) or a == c or b == d or (c - a > 0) != (d - b > 0):
                continue
            if (b - a) % 12 == (d - c) % 12 == 7:
                fifths += 1
            elif (b - a) % 12 == (d - c) % 12 == 0:
                octaves += 1
    return fifths, octaves


def range_violations(grid: list[list[str]]) -> int:
    return sum(
        not lo <= int(step[v][1:]) <= hi for step in grid for v, (lo, hi) in enumerate(RANGES) if step[v][0] == "p"
    )


def crossings(grid: list[list[str]]) -> int:
    states = sounding(grid)[::STEPS_PER_BEAT]
    return sum(1 for s in states for v in range(3) if s[v] is not None and s[v + 1] is not None and s[v] < s[v + 1])


def beats(grid: list[list[str]]) -> float:
    """Beats in which some voice sounds."""
    return sum(any(p is not None for p in s) for s in sounding(grid)) / STEPS_PER_BEAT


def voice_leading(grids: list[list[list[str]]]) -> dict[str, Any]:
    """Rates per 100 beats over a set of grids, and the beats they were counted on."""
    total = sum(beats(g) for g in grids) or 1.0
    fifths, octaves = (sum(parallels(g)[i] for g in grids) for i in (0, 1))
    counts = {
        "parallel_fifths": fifths,
        "parallel_octaves": octaves,
        "parallel_fifths_octaves": fifths + octaves,
        "range_violations": sum(range_violations(g) for g in grids),
        "voice_crossings": sum(crossings(g) for g in grids),
    }
    rates = {f"{k}_per_100_beats": round(100 * v / total, 3) for k, v in counts.items()}
    return {**rates, "beats": total, "pieces": len(grids)}
