"""Scores as files a musician opens: MIDI and MusicXML (music21), WAV (the FluidSynth CLI and the General
MIDI sound font), a piano-roll PNG. Each is written atomically; a missing program or sound font is one line
naming the Debian package that gives it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genlab.errors import GenlabError
from genlab.io.files import atomic_write, atomic_write_bytes
from genlab.io.images import png_bytes

if TYPE_CHECKING:
    from music21 import stream

SOUND_FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # Debian fluid-soundfont-gm
SAMPLE_RATE = 22050
RENDER_SECONDS_MAX = 600  # a render that takes longer has hung


def _write(score: stream.Score, path: Path, fmt: str) -> Path:
    def write(tmp: Path) -> None:
        try:
            score.write(fmt, fp=str(tmp))
        except Exception as exc:  # music21's exporters raise their own types (a length notation cannot hold)
            raise GenlabError(f"music21 cannot write this score as {fmt}: {exc}") from None

    return atomic_write(path, write)


def write_midi(score: stream.Score, path: Path) -> Path:
    return _write(score, path, "midi")


def write_musicxml(score: stream.Score, path: Path) -> Path:
    return _write(score, path, "musicxml")


def check_renderer(sound_font: Path = SOUND_FONT) -> str:
    """The fluidsynth program, or one line naming the Debian package that is missing."""
    program = shutil.which("fluidsynth")
    if program is None:
        raise GenlabError("rendering audio needs the fluidsynth program: install the Debian package fluidsynth")
    if not Path(sound_font).is_file():
        raise GenlabError(f"no sound font at {sound_font}: install the Debian package fluid-soundfont-gm")
    return program


def render_wav(score: stream.Score, path: Path, sound_font: Path = SOUND_FONT) -> Path:
    """The score played by FluidSynth's General MIDI instruments (a violin for a fiddle tune is the
    part's instrument; music21 writes a piano unless told) as 16-bit WAV at 22.05 kHz."""
    program = check_renderer(sound_font)
    with tempfile.TemporaryDirectory() as folder:
        midi = write_midi(score, Path(folder) / "score.mid")

        def render(tmp: Path) -> None:
            command = [program, "-ni", "-q", "-g", "0.6", "-r", str(SAMPLE_RATE), "-F", str(tmp), "-T", "wav"]
            done = subprocess.run(
                [*command, str(sound_font), str(midi)], capture_output=True, text=True, timeout=RENDER_SECONDS_MAX
            )
            if done.returncode != 0 or not tmp.is_file():
                raise GenlabError(f"fluidsynth failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")

        return atomic_write(path, render)


def piano_roll(notes: list[list[tuple[float, float, int]]], titles: list[str]) -> bytes:
    """PNG bytes of one piano roll per tune, stacked: notes are (onset, length, MIDI pitch) in quarter notes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # matplotlib on first use: import genlab stays light
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 1.8 * len(notes) + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(notes), 1, squeeze=False)[:, 0]
    for ax, tune, title in zip(axes, notes, titles):
        for onset, length, midi in tune:
            ax.broken_barh([(onset, length * 0.95)], (midi - 0.4, 0.8), color="tab:blue")
        pitches = [m for _, _, m in tune] or [60]
        ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
        ax.set_xlim(0, max((o + d for o, d, _ in tune), default=1))
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel("MIDI pitch", fontsize=8)
    axes[-1].set_xlabel("quarter notes")
    fig.tight_layout()
    canvas = fig.canvas
    canvas.draw()
    return png_bytes(np.asarray(canvas.buffer_rgba())[:, :, :3], scale=1)


def write_png(payload: bytes, path: Path) -> Path:
    return atomic_write_bytes(path, payload)
