"""Speech at 8 kHz <-> log-mel frames, back by Griffin-Lim, and DTW between two renderings of one sentence.

Frames: STFT (n_fft 256 = 32 ms, hop 80 = 10 ms, Hann, centred) -> power -> N_MELS mel bands over 0-4 kHz
(librosa's Slaney filterbank) -> natural log with a floor (LOG_FLOOR, about 75 dB below a loud band). A clip
is peak-normalised before analysis, so loudness is not what a model learns.
Shapes: (T,) samples -> (T // HOP + 1, N_MELS).
Back: exp -> mel power -> linear magnitude by the filterbank's pseudo-inverse -> fast Griffin-Lim
(genlab.io.griffin_lim, the spoken-digit GAN's vocoder too: momentum 0.99, fixed initial phases, so the same
frames always give the same bytes) at this corpus's rate and any length.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from genlab.data.speech import RATE
from genlab.io.audio import PEAK
from genlab.io.griffin_lim import griffin_lim as vocode
from genlab.io.griffin_lim import stft

N_FFT = 256
HOP = 80  # 10 ms at 8 kHz
N_MELS = 64
LOG_FLOOR = math.log(1e-4)  # log power floor: -9.2, about 75 dB below a full-scale sine's band
N_CEPS = 13  # mel-cepstral coefficients for alignment and MCD (c0, the loudness, left out)


@functools.lru_cache(maxsize=1)
def mel_bank() -> tuple[torch.Tensor, torch.Tensor]:
    """(N_MELS, N_FFT // 2 + 1) mel filterbank and its pseudo-inverse, built on first use."""
    import librosa

    bank = torch.from_numpy(librosa.filters.mel(sr=RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=RATE / 2))
    return bank.float(), torch.linalg.pinv(bank.float())


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(T,) float waveform at RATE -> (T // HOP + 1, N_MELS) float32 log-mel power, peak-normalised first."""
    wave = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    wave = wave * (PEAK / wave.abs().max().clamp_min(1e-8))
    spec = stft(wave, N_FFT, HOP).abs().pow(2)
    mel = mel_bank()[0] @ spec  # (N_MELS, frames)
    return mel.clamp_min(math.exp(LOG_FLOOR)).log().T.contiguous().numpy()


def griffin_lim(frames: np.ndarray | torch.Tensor, n_iter: int = 32, momentum: float = 0.99) -> np.ndarray:
    """(F, N_MELS) log-mel -> ((F - 1) * HOP,) float32 waveform at RATE with peak PEAK."""
    mel = torch.as_tensor(np.asarray(frames, dtype=np.float32)).T.exp()  # (N_MELS, F)
    magnitude = (mel_bank()[1] @ mel).clamp_min(0).sqrt()  # (N_FFT // 2 + 1, F)
    wave = vocode(magnitude, N_FFT, HOP, (magnitude.shape[1] - 1) * HOP, n_iter, momentum)
    return (wave * (PEAK / wave.abs().max().clamp_min(1e-8))).numpy().astype(np.float32)


def cepstra(frames: np.ndarray) -> np.ndarray:
    """(F, N_MELS) log-mel -> (F, N_CEPS - 1) mel-cepstra c1..c12 (orthonormal DCT-II; c0 left out)."""
    from scipy.fft import dct

    return dct(np.asarray(frames, dtype=np.float64), type=2, norm="ortho", axis=1)[:, 1:N_CEPS]


def dtw_path(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The DTW path between two log-mel sequences (Fs, N_MELS), (Ft, N_MELS) by Euclidean distance of their
    mel-cepstra: (K, 2) int pairs (source frame, target frame), from (0, 0) to (Fs - 1, Ft - 1)."""
    import librosa

    _, path = librosa.sequence.dtw(X=cepstra(source).T, Y=cepstra(target).T, metric="euclidean")
    return path[::-1].astype(np.int64)


def warp_to_source(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`target` frames moved onto `source`'s timeline: (Fs, N_MELS), frame i the mean of the target frames
    DTW matches to source frame i."""
    path = dtw_path(source, target)
    sums = np.zeros((len(source), target.shape[1]))
    np.add.at(sums, path[:, 0], target[path[:, 1]])
    counts = np.bincount(path[:, 0], minlength=len(source))[:, None]
    return (sums / counts).astype(np.float32)


def mel_cepstral_distortion(a: np.ndarray, b: np.ndarray) -> float:
    """MCD in dB between two log-mel sequences after DTW: (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2),
    averaged over the path (c1..c12 of the natural-log mel power, halved to amplitude cepstra)."""
    path = dtw_path(a, b)
    diff = (cepstra(a)[path[:, 0]] - cepstra(b)[path[:, 1]]) / 2  # power -> amplitude log
    return float(np.mean(10 / math.log(10) * np.sqrt(2 * (diff**2).sum(axis=1))))


def filter_toward(frames: np.ndarray, source: np.ndarray, lifter: int = N_CEPS) -> np.ndarray:
    """The spectral-differential vocoder: (F, N_MELS) converted log-mel and the (T,) recording at RATE they were
    converted from -> ((F - 1) * HOP,) float32 waveform at RATE with peak PEAK.

    No phase or pitch is guessed: the recording's own STFT is kept and each frame is filtered by the smooth
    difference between the converted and the recording's own log-mel envelope (the difference liftered to its
    first `lifter` mel-cepstra, c0..c12, so it changes the envelope, formants and tilt, and leaves the harmonics
    alone), interpolated from the mel band centres onto the STFT's linear bins. The excitation (pitch, voice
    quality, timing) stays the recording's: a voice change for voices of one register, as in the VCC 2018
    baseline's DIFFVC (Kobayashi et al.)."""
    import librosa
    from scipy.fft import dct, idct

    wave = torch.as_tensor(np.asarray(source, dtype=np.float32))
    wave = wave * (PEAK / wave.abs().max().clamp_min(1e-8))  # the normalisation log_mel analysed
    gain = np.asarray(frames, dtype=np.float64) - log_mel(source)  # (F, N_MELS) log power
    c = dct(gain, type=2, norm="ortho", axis=1)
    c[:, lifter:] = 0
    gain = idct(c, type=2, norm="ortho", axis=1)
    centres = librosa.mel_frequencies(n_mels=N_MELS + 2, fmin=0.0, fmax=RATE / 2)[1:-1]  # Slaney, as mel_bank
    linear = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    # (F, N_FFT // 2 + 1): log power gain -> amplitude gain
    amp = np.exp(np.stack([np.interp(linear, centres, row) for row in gain]) / 2)
    spec = stft(wave, N_FFT, HOP) * torch.from_numpy(amp.T.astype(np.float32))  # (N_FFT // 2 + 1, F)
    out = torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, length=(len(frames) - 1) * HOP)
    return (out * (PEAK / out.abs().max().clamp_min(1e-8))).numpy().astype(np.float32)
