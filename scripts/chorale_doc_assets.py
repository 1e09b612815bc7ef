"""The pictures and the sound of docs/music.md's chorales, from a trained chorale run: piano rolls of a chorale
drawn with the voice-leading rules and by the model alone, of the harmonisation of docs/examples/chorale-soprano
.musicxml (the first 8 bars of a held-out chorale's soprano) above Bach's own setting of it; the first bars of
that harmonisation rendered by FluidSynth (mono, 11.025 kHz) and its mel spectrogram.

    python scripts/chorale_doc_assets.py runs/chorale   # -> docs/img/chorale-*.png, docs/audio/chorale-*.wav
"""

from __future__ import annotations

import argparse
from pathlib import Path

from music_doc_assets import ROOT, small_wav, spectrogram_png

import genlab
from genlab.data.chorale_tokens import tokens_grid
from genlab.data.chorales import load_chorales, split_sequences
from genlab.io.music import piano_roll, write_png
from genlab.tasks.chorale.output import GeneratedChorales

MELODY = ROOT / "docs" / "examples" / "chorale-soprano.musicxml"
STEPS = 16 * 6  # six bars: about 12 s at music21's 120 quarter notes a minute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    handle = genlab.load(args.run)
    ruled = handle.generate(mode="major", tonic="C", bars=8, n=1, seed=2)
    free = handle.generate(mode="major", tonic="C", bars=8, n=1, seed=2, sampling="free")
    harmonised = handle.generate(melody=str(MELODY), n=1, seed=2)
    GeneratedChorales(ruled.grids + free.grids, "major", 0).save(ROOT / "docs/img/chorale-rules-free.png")
    harmonised.save(ROOT / "docs/img/chorale-harmonised.png")
    test = [tokens_grid(t) for t in split_sequences(load_chorales(handle.recipe.data.path), "test")]
    mode, bach = next((m, g[: 8 * 16]) for m, g in sorted(test, key=lambda t: t[0]) if len(g) >= 8 * 16)
    titles = ["the model's harmonisation of a held-out soprano (rules)", "Bach's own setting of that soprano"]
    rows = [*harmonised.notes(), *GeneratedChorales([bach], mode, harmonised.shift).notes()]
    write_png(piano_roll(rows, titles), ROOT / "docs/img/chorale-roll.png")
    harmonised.save(ROOT / "docs/img/chorale-harmonised.mid")
    short = GeneratedChorales([harmonised.grids[0][:STEPS]], harmonised.mode, harmonised.shift)
    mono = small_wav(short, ROOT / "docs/audio/chorale-harmonised.wav")
    title = "the harmonised chorale's first bars as FluidSynth plays them (FluidR3 GM)"
    spectrogram_png(mono, ROOT / "docs/img/chorale-harmonised-spectrogram.png", title)


if __name__ == "__main__":
    main()
