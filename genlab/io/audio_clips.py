"""Generated audio as a result: clips (N, L) at 16 kHz <-> a .wav file (one clip) or a folder of them
with a spectrogram grid, like genlab.io.images.GeneratedImages for images."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlab.errors import GenlabError
from genlab.io.audio import SAMPLE_RATE, write_wav
from genlab.io.files import atomic_write_bytes
from genlab.io.images import make_grid, png_bytes

GRID_NAME = "spectrograms.png"
CLIP_NAME = re.compile(r"\d{2,}-[a-z0-9-]+\.wav")  # how save() names the clips of a folder


def check_audio_path(out: Path, clips: int) -> Path:
    """A .wav file for one clip, or a folder (no suffix; created if its parent exists) for several;
    checked before anything is written."""
    out = Path(out)
    if out.suffix not in (".wav", ""):
        raise GenlabError(f"--out {out} must be a .wav file or a folder")
    if out.suffix == ".wav" and clips != 1:
        raise GenlabError(f"--out {out}: {clips} clips need a folder (--out FOLDER writes NN-<word>.wav each)")
    if not out.parent.is_dir():
        raise GenlabError(f"--out {out}: folder {out.parent} does not exist")
    if out.suffix == "" and out.exists() and not out.is_dir():
        raise GenlabError(f"--out {out} is a file, not a folder")
    return out


@dataclass
class GeneratedAudio:
    """What an audio run's `generate` returns: waveforms and what each one says."""

    waves: list[torch.Tensor]  # N clips, each (L_i,) float32 in [-1, 1] at 16 kHz (a `text` clip is longer)
    words: list[str]  # what each clip says: "seven", or "four zero seven"
    spectrograms: list[torch.Tensor]  # N (n_mels, frames_i) images in [-1, 1], low frequencies first
    sample_rate: int = SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.waves)

    def numpy(self) -> np.ndarray:
        """(N, L) float32 when all clips have one length (else an object array of (L_i,) arrays)."""
        arrays = [w.detach().float().cpu().numpy() for w in self.waves]
        if len({len(a) for a in arrays}) == 1:
            return np.stack(arrays)
        out = np.empty(len(arrays), dtype=object)
        out[:] = arrays
        return out

    def seconds(self) -> float:
        return sum(len(w) for w in self.waves) / self.sample_rate

    def grid(self, columns: int = 10) -> np.ndarray:
        """uint8 grid of the spectrograms (high frequencies up), `columns` per row; clips of other lengths
        are padded with silence to the longest."""
        width = max(s.shape[1] for s in self.spectrograms)
        padded = torch.stack(
            [torch.nn.functional.pad(s, (0, width - s.shape[1]), value=-1.0) for s in self.spectrograms]
        )  # (N, M, T)
        images = (padded.flip(1)[:, None] + 1) / 2  # (N, 1, M, T) in [0, 1], low frequencies at the bottom
        return make_grid(images, nrow=min(columns, len(self)))

    def save(self, out: str | Path) -> Path:
        """One clip -> `out.wav`; several -> folder `out/` with NN-<word>.wav per clip and spectrograms.png.
        In a folder an earlier save made (it has spectrograms.png), that save's clips not written again
        (NN-<word>.wav) are removed, so that the folder holds what its picture shows; other files stay."""
        out = check_audio_path(Path(out), len(self))
        if out.suffix == ".wav":
            return write_wav(out, self.numpy()[0], self.sample_rate)
        out.mkdir(exist_ok=True)
        saved_before, written = (out / GRID_NAME).is_file(), set()
        for i, (wave, words) in enumerate(zip(self.waves, self.words)):
            name = f"{i:02d}-{re.sub(r'[^a-z0-9]+', '-', words.lower()).strip('-') or 'clip'}.wav"
            write_wav(out / name, wave.detach().float().cpu().numpy(), self.sample_rate)
            written.add(name)
        atomic_write_bytes(out / GRID_NAME, png_bytes(self.grid()))
        for stale in out.glob("*.wav") if saved_before else ():
            if CLIP_NAME.fullmatch(stale.name) and stale.name not in written:
                stale.unlink()
        return out
