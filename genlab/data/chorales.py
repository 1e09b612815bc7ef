"""Bach's four-part chorales as token sequences (genlab.data.chorale_tokens): the settings PyPI `music21` ships in
its corpus (corpus/bach/, MusicXML), or a user's own folder of four-part .mxl/.musicxml/.xml files.

Each file is read once with music21 and the token sequences are cached as JSON under $GENLAB_DATA_DIR/chorales/
(a user's files by the hash of their bytes). A score the grid cannot hold (not four parts, not 4/4, a note off the
16th-note grid) is counted and left out; settings whose tokens are identical (the corpus holds some chorales
twice) are kept once. The split is by *melody*: settings whose sopranos begin with the same 12 notes (one
chorale tune harmonised in several cantatas) fall in one split together, so no test melody was seen in
training; the melody groups are shuffled with a fixed seed and filled 80 % train, 10 % validation, 10 % test.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from genlab.data.chorale_tokens import (
    STEPS_PER_BAR,
    ChoraleError,
    grid_step,
    grid_tokens,
    part_tokens,
    pickup_steps,
    score_grid,
    transposition,
    voice_notes,
)
from genlab.data.images import cache_root
from genlab.errors import GenlabError
from genlab.io.files import atomic_write_text, read_json

SPLIT_SEED = 2026
SPLITS = ("train", "validation", "test")
SHARES = (0.8, 0.1, 0.1)
CACHE_VERSION = 1
SUFFIXES = (".mxl", ".musicxml", ".xml")
MELODY_NOTES = 12  # soprano notes that name a chorale tune for the split


def score_files(path: str | Path | None) -> list[Path]:
    """music21's Bach corpus files, or a user's MusicXML file or folder."""
    if path is None:
        import music21  # 0.3 s to import: only music runs pay

        return sorted(p for p in (Path(music21.__file__).parent / "corpus" / "bach").iterdir() if p.suffix in SUFFIXES)
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise GenlabError(f"data.path {path}: no .mxl, .musicxml or .xml file there")
    return files


def parse_file(file: Path) -> dict[str, Any]:
    """One file -> {name, mode, tokens}; a score the grid cannot hold raises ChoraleError."""
    from music21 import converter

    try:
        score = converter.parse(file)
    except Exception as exc:  # music21's readers raise many types on a malformed file
        raise ChoraleError(f"music21 cannot read it ({type(exc).__name__})") from exc
    if not hasattr(score, "parts"):
        raise ChoraleError("not a score with parts")
    mode, grid = score_grid(score)
    return {"name": file.stem, "mode": mode, "tokens": " ".join(grid_tokens(mode, grid)[1:])}


def melody_key(chorale: dict[str, Any]) -> tuple:
    """The first MELODY_NOTES soprano pitches (transposed): the tune a setting harmonises."""
    tokens = chorale["tokens"].split()
    grid = [tokens[i : i + 4] for i in range(0, len(tokens), 4)]
    pitches = [midi for _, _, midi in voice_notes(grid, 0) if midi is not None]
    return (chorale["mode"], *pitches[:MELODY_NOTES])


def assign_splits(chorales: list[dict[str, Any]], seed: int = SPLIT_SEED) -> None:
    """Write each chorale's split: melody groups in a fixed random order fill train, validation, test in turn
    by their shares of the chorales (at least one group each where there are 3 or more)."""
    groups: dict[tuple, list[int]] = {}
    for index, chorale in enumerate(chorales):
        groups.setdefault(melody_key(chorale), []).append(index)
    keys = list(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    held = [max(1, round(share * len(chorales))) for share in SHARES[1:]]
    filled = {"validation": 0, "test": 0}
    for rank in order:
        members = groups[keys[rank]]
        split = next((s for s, want in zip(("validation", "test"), held) if filled[s] < want), "train")
        filled[split] = filled.get(split, 0) + len(members)
        for index in members:
            chorales[index]["split"] = split


def cache_name(path: str | Path | None, files: list[Path]) -> str:
    if path is None:
        return "bach"
    return "files-" + hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


def load_chorales(path: str | Path | None = None) -> dict[str, Any]:
    """The chorales, parsed once and cached: {"chorales": [{name, mode, tokens, split}], "skipped": {reason:
    count}, "duplicates": count}. tokens are the grid's S A T B tokens (without the mode), space-separated."""
    files = score_files(path)
    cache = cache_root() / "chorales" / f"{cache_name(path, files)}-v{CACHE_VERSION}.json"
    if cache.is_file():
        return read_json(cache, "chorale cache")
    chorales, skipped, seen = [], Counter(), set()
    for file in files:
        try:
            chorale = parse_file(file)
        except ChoraleError as exc:
            skipped[str(exc).split(" at ")[0]] += 1
            continue
        if (chorale["mode"], chorale["tokens"]) not in seen:
            seen.add((chorale["mode"], chorale["tokens"]))
            chorales.append(chorale)
    parsed = len(files) - sum(skipped.values())
    if len(chorales) < 3:
        raise GenlabError(f"{len(chorales)} usable chorales; train, validation and test need 3 or more")
    assign_splits(chorales)
    result = {"chorales": chorales, "skipped": dict(skipped), "duplicates": parsed - len(chorales)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, json.dumps(result, indent=0))
    return result


def split_sequences(data: dict[str, Any], split: str) -> list[list[str]]:
    """Each chorale of one split as its token sequence, the mode first."""
    if split not in SPLITS:
        raise GenlabError(f"unknown split '{split}' (choose {', '.join(SPLITS)})")
    return [[f"<{c['mode']}>", *c["tokens"].split()] for c in data["chorales"] if c["split"] == split]


SOPRANO_RANGE = (52, 84)  # E3 to C6 after transposition: the compass of the corpus's soprano parts
MAX_MELODY_BYTES = 5_000_000


def read_melody(path: str | Path) -> tuple[str, list[str], int]:
    """A soprano melody to harmonise, one part of MusicXML in 4/4 -> (mode, its token at each step, the shift
    from C major / A minor back to its key). Anything else is one line."""
    from music21 import converter, meter

    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"--melody {path}: no such file")
    if path.stat().st_size > MAX_MELODY_BYTES:
        raise GenlabError(f"--melody {path} is larger than {MAX_MELODY_BYTES:,} bytes")
    try:
        score = converter.parse(path)
    except Exception as exc:  # music21's readers raise many types on a malformed file
        raise GenlabError(f"--melody {path} is not a score music21 can read ({type(exc).__name__})") from None
    parts = getattr(score, "parts", [])
    if len(parts) != 1:
        raise GenlabError(f"--melody {path} has {len(parts)} parts; give the soprano melody alone, as one part")
    if not parts[0].flatten().notes:
        raise GenlabError(f"--melody {path} has no notes")
    signatures = {ts.ratioString for ts in score.recurse().getElementsByClass(meter.TimeSignature)}
    if signatures - {"4/4"}:
        raise GenlabError(f"--melody {path} is in {' '.join(sorted(signatures))}; the model knows 4/4 chorales")
    return melody_tokens(score, path)


def melody_tokens(score: Any, path: Path) -> tuple[str, list[str], int]:
    key = score.analyze("key")
    mode = key.mode if key.mode in ("major", "minor") else "major"
    shift = transposition(key.tonic.pitchClass, mode)
    part = score.parts[0]
    lead = pickup_steps(part)
    try:
        end = lead + grid_step(part.highestTime, "the end")
        tokens = part_tokens(part, shift, lead, -(-end // STEPS_PER_BAR) * STEPS_PER_BAR)
    except ChoraleError as exc:
        if "vocabulary" not in str(exc):
            raise GenlabError(f"--melody {path}: {exc}") from None
        tokens = [f"p{m.midi + shift}" for m in part.flatten().pitches]  # a pitch the grid cannot even hold
    low, high = SOPRANO_RANGE
    outside = [int(t[1:]) for t in tokens if t.startswith("p") and not low <= int(t[1:]) <= high]
    if outside:
        raise GenlabError(
            f"--melody {path} goes outside the soprano range the model learnt (MIDI {outside[0] - shift}; it "
            f"knows MIDI {low - shift} to {high - shift} in this key)"
        )
    return mode, tokens, -shift
