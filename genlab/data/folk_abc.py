"""Tokens -> ABC text (music21 reads ABC but does not write it).

Notes are spelled as the key spells them and written against the K: signature: an accidental where a note
differs from the signature, and the signature's own where an earlier note of the bar had another. Lengths
are in eighth notes (L:1/8); a tied note ends with `-`.
"""

from __future__ import annotations

from fractions import Fraction

from genlab.data.folk_tokens import body_bars, events, header_of, spelled_pitch, tonic_key

ABC_MODES = {"major": "", "minor": "m", "dorian": "dor", "mixolydian": "mix"}
ACCIDENTALS = {-1: "_", 0: "=", 1: "^", -2: "__", 2: "^^"}


def _length(quarters: Fraction) -> str:
    eighths = quarters * 2
    if eighths == 1:
        return ""
    if eighths.denominator == 1:
        return str(eighths.numerator)
    return f"{eighths.numerator if eighths.numerator != 1 else ''}/{eighths.denominator}"


def _letter(step: str, octave: int) -> str:
    """ABC's octaves: C is middle C (octave 4), c the octave above, c' and C, further out."""
    if octave >= 5:
        return step.lower() + "'" * (octave - 5)
    return step + "," * (4 - octave)


def abc_text(
    tokens: list[str], tonic: str = "D", number: int = 1, title: str = "Generated tune", strict: bool = False
) -> str:
    """One tune's tokens -> an ABC tune (X: to the final bar line); malformed events are left out unless
    `strict` (genlab.data.folk_tokens.events)."""
    header = header_of(tokens)
    k = tonic_key(tonic, header.mode)
    signature = {p.step: int(p.alter) for p in k.alteredPitches}
    lines = [f"X:{number}", f"T:{title}", f"R:{header.tune_type}", f"M:{header.meter}", "L:1/8"]
    lines.append(f"K:{k.tonic.name.replace('-', 'b')}{ABC_MODES[header.mode]}")
    bars = []
    for bar in body_bars(tokens):
        # Accidentals written so far in this bar, per note and per letter: ABC carries one to the bar's end in
        # its octave, some readers in every octave, music21's not at all; writing every note off the signature
        # with its accidental, and the signature's own after an accidental, reads the same by all three.
        current: dict[tuple[str, int] | str, int] = {}
        notes = []
        for step, length, tied in events(bar, strict):
            if step is None:
                notes.append("z" + _length(length))
                continue
            p = spelled_pitch(step, k)
            alter = int(p.alter)
            default = signature.get(p.step, 0)
            readings = (current.get((p.step, p.octave), default), current.get(p.step, default))
            mark = ACCIDENTALS[alter] if any(alter != r for r in (default, *readings)) else ""
            current[(p.step, p.octave)] = current[p.step] = alter
            notes.append(mark + _letter(p.step, p.octave) + _length(length) + ("-" if tied else ""))
        bars.append(" ".join(notes))
    body = [" | ".join(bars[i : i + 4]) + " |" for i in range(0, len(bars), 4)]
    if body:
        body[-1] = body[-1][:-1] + "|]"
    return "\n".join(lines + body) + "\n"
