"""The chorale pictures and example of docs/music.md, from a trained run: docs/examples/chorale-soprano.musicxml
(the first 8 bars of a test chorale's soprano, in C major / A minor), and docs/img/chorale-roll.png (an 8-bar
chorale the run drew, and its harmonisation of that soprano above Bach's own setting).

    python scripts/chorale_doc_assets.py runs/chorale
"""

from __future__ import annotations

import argparse
from pathlib import Path

import genlab
from genlab.data.chorale_tokens import tokens_grid
from genlab.data.chorales import load_chorales, split_sequences
from genlab.io.music import piano_roll, write_musicxml, write_png
from genlab.tasks.chorale.output import GeneratedChorales

ROOT = Path(__file__).resolve().parent.parent
STEPS = 8 * 16


def soprano_score(grid: list[list[str]], mode: str):
    """The soprano alone as a one-part score (the other voices rest and are dropped)."""
    from music21 import stream

    score = GeneratedChorales([[[step[0], "r", "r", "r"] for step in grid]], mode).score()
    return stream.Score([score.parts[0]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    handle = genlab.load(args.run)
    test = [tokens_grid(t) for t in split_sequences(load_chorales(handle.recipe.data.path), "test")]
    mode, bach = next((m, g[:STEPS]) for m, g in sorted(test, key=lambda t: t[0]) if len(g) >= STEPS)  # major first
    melody = write_musicxml(soprano_score(bach, mode), ROOT / "docs" / "examples" / "chorale-soprano.musicxml")
    harmonised = handle.generate(melody=str(melody), n=1, seed=args.seed)
    drawn = handle.generate(mode=mode, bars=8, n=1, seed=args.seed)
    rows = [*drawn.notes(), *harmonised.notes(), *GeneratedChorales([bach], mode).notes()]
    titles = [
        f"a chorale the model drew ({mode}, 8 bars, all four voices sampled)",
        "the model's harmonisation of a held-out soprano (alto, tenor, bass sampled)",
        "Bach's own setting of that soprano",
    ]
    write_png(piano_roll(rows, titles), ROOT / "docs" / "img" / "chorale-roll.png")
    harmonised.save(ROOT / "docs" / "img" / "chorale-harmonised.mid")
    print("wrote", melody, "and docs/img/chorale-roll.png")


if __name__ == "__main__":
    main()
