"""The pictures and the sound of docs/music.md, from a trained folk run: a piano roll of two generated tunes,
their ABC, the first bars of one rendered by FluidSynth (mono, 11.025 kHz: small enough to commit) and that
audio's mel spectrogram.

    python scripts/music_doc_assets.py runs/folk     # -> docs/img/folk-*.png, docs/audio/folk-jig.wav, stdout: ABC
    python scripts/music_doc_assets.py runs/folk --sampling beats --guidance 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import genlab
from genlab.data.folk_tokens import BAR
from genlab.tasks.folk.output import GeneratedTunes

ROOT = Path(__file__).resolve().parent.parent
RATE = 11025
SECONDS = 12  # at most: about 260 kB of 16-bit mono
BARS = 8


def first_bars(tokens: list[str], bars: int) -> list[str]:
    ends = [i for i, t in enumerate(tokens) if t == BAR]
    return tokens[: ends[bars - 1] + 1] + ["<end>"] if len(ends) >= bars else tokens


def spectrogram_png(wave: np.ndarray, path: Path, title: str) -> None:
    import librosa
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=wave, sr=RATE, n_mels=96, fmax=RATE / 2), ref=np.max)
    fig = Figure(figsize=(8, 2.4), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(mel, origin="lower", aspect="auto", extent=(0, len(wave) / RATE, 0, 96), cmap="magma")
    ax.set_xlabel("seconds")
    ax.set_ylabel("mel band")
    ax.set_title(title, fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(path)


def small_wav(result, path: Path) -> np.ndarray:
    """A generated result (anything whose .save writes a .wav) as mono 11.025 kHz 16-bit WAV at `path`, cut to
    SECONDS with half a second's fade-out: small enough to commit. Returns the samples."""
    import librosa
    import soundfile

    with tempfile.TemporaryDirectory() as folder:
        result.save(Path(folder) / "full.wav")
        wave, rate = soundfile.read(Path(folder) / "full.wav", dtype="float32")
    mono = librosa.resample(wave.mean(axis=1), orig_sr=rate, target_sr=RATE)[: SECONDS * RATE]
    mono[-RATE // 2 :] *= np.linspace(1, 0, len(mono[-RATE // 2 :]))
    soundfile.write(path, mono, RATE, subtype="PCM_16")
    return mono


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--sampling", default=None, help="metre, beats or free (default: the run's eval.sampling)")
    parser.add_argument("--guidance", type=float, default=None, help="metre guidance (default: the run's)")
    args = parser.parse_args()
    handle = genlab.load(args.run)
    how = {"sampling": args.sampling or handle.recipe.eval.sampling, "guidance": args.guidance}
    jig = handle.generate(meter="6/8", mode="major", tune_type="jig", tonic="D", n=1, seed=7, **how)
    reel = handle.generate(meter="4/4", mode="dorian", tune_type="reel", tonic="D", n=1, seed=7, **how)
    (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "audio").mkdir(parents=True, exist_ok=True)
    GeneratedTunes(jig.tunes + [first_bars(reel.tunes[0], 16)], "D").save(ROOT / "docs/img/folk-roll.png")
    print(jig.abc())
    print(reel.abc())
    mono = small_wav(GeneratedTunes([first_bars(jig.tunes[0], BARS)], "D"), ROOT / "docs/audio/folk-jig.wav")
    title = "the generated jig as FluidSynth plays it (violin, FluidR3 GM)"
    spectrogram_png(mono, ROOT / "docs/img/folk-jig-spectrogram.png", title)


if __name__ == "__main__":
    main()
