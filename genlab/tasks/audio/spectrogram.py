"""The audio GAN's representation: 1 s of 16 kHz speech <-> a 64 x 64 log-mel image in [-1, 1], and back
to a waveform by Griffin-Lim.

Forward (data -> image): STFT (n_fft 1024, hop 250, Hann, centred: 65 frames) -> power -> 64 mel bands
over 20 Hz-8 kHz (librosa's Slaney filterbank: the evaluator's bands, genlab.evaluation.audio_eval) -> dB
relative to the clip's loudest cell -> the top 80 dB mapped to [-1, 1] -> the first 64 frames (the 65th
holds the last 16 ms, silence in a fitted one-second clip).
Backward (image -> waveform): dB -> mel power -> linear power by the filterbank's pseudo-inverse ->
fast Griffin-Lim (genlab.io.griffin_lim, batched in torch) so that 1,000 clips take about a minute on 2 CPU
cores rather than librosa's NNLS + Griffin-Lim clip by clip.
Not the evaluator's frames (10 ms hops: 101 of them): a 64 x 64 image costs both networks 1.6x less. The
evaluator hears the Griffin-Lim waveform, not this image, so it scores what a listener hears either way.
"""

from __future__ import annotations

import functools

import torch

from genlab.evaluation.audio_eval import F_MAX, F_MIN, N_MELS
from genlab.io.audio import CLIP_SAMPLES, PEAK, SAMPLE_RATE
from genlab.io.griffin_lim import griffin_lim, stft

N_FFT = 1024
HOP = 250
FRAMES = 64  # image width: CLIP_SAMPLES // HOP + 1 = 65 centred frames, the last dropped
TOP_DB = 80.0  # the dynamic range kept below each clip's loudest cell
GAP_SECONDS = 0.12  # silence between the words of a `text` clip
TRIM_DB = 35.0  # a word spans the frames within this many dB of its loudest frame


@functools.lru_cache(maxsize=1)
def _mel_bank() -> tuple[torch.Tensor, torch.Tensor]:
    """The mel filterbank (N_MELS, N_FFT // 2 + 1) and its pseudo-inverse (least-squares mel -> linear
    power), built on first use: librosa's import (scipy.signal) would double `import genlab`'s time."""
    import librosa

    bank = torch.from_numpy(
        librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX)
    ).float()
    return bank, torch.linalg.pinv(bank)


def log_mel_image(waves: torch.Tensor, frames: int | None = FRAMES) -> torch.Tensor:
    """(N, L) float waveforms -> (N, N_MELS, frames) in [-1, 1] (frames=None: all L // HOP + 1 frames)."""
    mel = _mel_bank()[0] @ stft(waves.float(), N_FFT, HOP).abs().pow(2)  # (N, N_MELS, T)
    db = 10 * torch.log10(mel.clamp_min(1e-10))
    # Relative to the clip's peak (a silent clip's floor stays at -TOP_DB): loudness is not what a digit is.
    db = db - db.amax(dim=(1, 2), keepdim=True).clamp_min(-TOP_DB)
    image = (db.clamp_min(-TOP_DB) / TOP_DB) * 2 + 1
    return image if frames is None else image[:, :, :frames]


def image_to_wave(images: torch.Tensor, n_iter: int = 32, momentum: float = 0.99) -> torch.Tensor:
    """(N, N_MELS, FRAMES) in [-1, 1] -> (N, CLIP_SAMPLES) float32 waveforms, peak PEAK (0.9, as the
    training clips: genlab.io.audio.fit_clip)."""
    images = images.detach().float().cpu().clamp(-1, 1)
    floor = torch.full_like(images[:, :, :1], -1.0)  # the dropped 65th frame, as silence
    db = (torch.cat([images, floor], dim=2) + 1) / 2 * TOP_DB - TOP_DB  # (N, M, 65)
    power = (_mel_bank()[1] @ torch.pow(10.0, db / 10)).clamp_min(0)  # (N, F, 65) linear power
    waves = griffin_lim(power.sqrt(), N_FFT, HOP, CLIP_SAMPLES, n_iter, momentum)
    return waves * (PEAK / waves.abs().amax(dim=1, keepdim=True).clamp_min(1e-8))


def trim_word(wave: torch.Tensor) -> torch.Tensor:
    """(L,) -> the span from the first to the last HOP-sample frame within TRIM_DB of the loudest one
    (at least one frame): a word without the silence around it."""
    frames = wave[: len(wave) // HOP * HOP].view(-1, HOP)  # (L // HOP, HOP)
    db = 10 * torch.log10(frames.pow(2).mean(dim=1).clamp_min(1e-12))
    loud = torch.nonzero(db >= db.max() - TRIM_DB).flatten()
    return wave[int(loud[0]) * HOP : (int(loud[-1]) + 1) * HOP]


def join_words(words: list[torch.Tensor]) -> torch.Tensor:
    """Trimmed words (L_i,) -> one waveform: the words with GAP_SECONDS of silence between them."""
    gap = torch.zeros(round(GAP_SECONDS * SAMPLE_RATE))
    pieces = [piece for word in words for piece in (gap, word)][1:]
    return torch.cat(pieces)
