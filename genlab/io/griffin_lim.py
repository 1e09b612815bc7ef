"""Griffin-Lim: a waveform whose STFT magnitude matches a given one, the phases found by iteration.

One implementation for every genlab vocoder that has only magnitudes (the spoken-digit GAN at 16 kHz, the
speech task at 8 kHz): fast Griffin-Lim (Perraudin et al. 2013, momentum 0.99, as librosa.griffinlim), batched
in torch. The initial phases come from a fixed seed and have the shape of one clip's spectrogram, shared by
every clip of a batch, so a clip's bytes depend neither on the run nor on the batch it is in.
It lives in io (below data and tasks) because it is pure signal processing: no model, no data set.
"""

from __future__ import annotations

import functools
import math

import torch

SEED = 1234


@functools.lru_cache(maxsize=4)
def hann(n_fft: int) -> torch.Tensor:
    return torch.hann_window(n_fft)


def stft(waves: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(..., L) -> complex (..., n_fft // 2 + 1, L // hop + 1): Hann window, centred frames."""
    return torch.stft(waves, n_fft, hop, window=hann(n_fft), center=True, return_complex=True)


@torch.no_grad()
def griffin_lim(
    magnitude: torch.Tensor, n_fft: int, hop: int, length: int, n_iter: int = 32, momentum: float = 0.99
) -> torch.Tensor:
    """(..., n_fft // 2 + 1, T) linear STFT magnitudes -> (..., length) float32 waveforms (not normalised)."""
    magnitude = magnitude.float()
    noise = torch.Generator().manual_seed(SEED)
    phase = torch.rand(magnitude.shape[-2:], generator=noise) * 2 * math.pi  # (F, T), shared by the batch
    angles = torch.polar(torch.ones_like(magnitude), phase.expand_as(magnitude))
    previous = torch.zeros_like(angles)
    window = hann(n_fft)
    for _ in range(n_iter):
        waves = torch.istft(magnitude * angles, n_fft, hop, window=window, length=length)
        rebuilt = stft(waves, n_fft, hop)
        angles = rebuilt - (momentum / (1 + momentum)) * previous  # the momentum step (fast Griffin-Lim)
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    return torch.istft(magnitude * angles, n_fft, hop, window=window, length=length)
