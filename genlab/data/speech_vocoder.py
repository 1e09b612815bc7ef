"""The WORLD vocoder (Morise et al. 2016, through pyworld) driven by log-mel frames and a pitch track: the
speech task's waveform maker beside Griffin-Lim.

Griffin-Lim has only the log-mel, so it must guess the phases and blurs the harmonics into a buzz. WORLD builds
the waveform from a source-filter model instead: a pulse train at the pitch (F0) shaped by a spectral envelope,
mixed with noise by an aperiodicity. The envelope comes from the log-mel frames (interpolated from the mel band
centres onto WORLD's linear frequency grid); the pitch comes from the recording the frames were made of (the
front end's rendering, or the `--input` recording), moved into the target voice's range; the aperiodicity is
the target voice's own median (measured with WORLD's D4C on its training recordings), full noise where the
pitch track says unvoiced.
Frames: (F, N_MELS) natural-log mel power every 10 ms (genlab.data.speech_features); pitch (F,) Hz, 0 = unvoiced;
output ((F - 1) * HOP,) samples at RATE, the length Griffin-Lim gives for the same frames.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from genlab.data.speech import RATE
from genlab.data.speech_features import HOP, N_MELS
from genlab.errors import GenlabError
from genlab.io.audio import PEAK

FRAME_MS = 1000 * HOP / RATE  # 10 ms: WORLD's frames land on the log-mel frames' centres
F0_FLOOR, F0_CEIL = 60.0, 500.0  # Hz: the pitch search range (covers men's and women's voices)


def _pyworld():
    try:
        import pyworld
    except ImportError:
        raise GenlabError("the WORLD vocoder needs pyworld (pip install pyworld-prebuilt)") from None
    return pyworld


@functools.lru_cache(maxsize=1)
def _grids() -> tuple[int, np.ndarray, np.ndarray]:
    """(WORLD's FFT size at RATE, the mel bands' centre frequencies (N_MELS,), its linear bins (FFT // 2 + 1,))."""
    import librosa

    fft_size = _pyworld().get_cheaptrick_fft_size(RATE, F0_FLOOR)
    centres = librosa.mel_frequencies(n_mels=N_MELS + 2, fmin=0.0, fmax=RATE / 2)[1:-1]  # Slaney, as mel_bank
    return fft_size, centres, np.linspace(0, RATE / 2, fft_size // 2 + 1)


def _fit(values: np.ndarray, frames: int) -> np.ndarray:
    """Cut or zero-pad a per-frame track to `frames` (WORLD and the STFT may differ by a frame at the end)."""
    return np.pad(values[:frames], [(0, max(0, frames - len(values)))] + [(0, 0)] * (values.ndim - 1))


def _dio(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T,) float64 at RATE -> (F0 in Hz, 0 where unvoiced; the frames' times in s), DIO refined by StoneMask."""
    pw = _pyworld()
    f0, times = pw.dio(x, RATE, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_MS)
    return pw.stonemask(x, f0, times, RATE), times


def pitch_track(samples: np.ndarray) -> np.ndarray:
    """(T,) waveform at RATE -> (T // HOP + 1,) F0 in Hz every 10 ms, 0 where unvoiced."""
    return _fit(_dio(np.ascontiguousarray(samples, dtype=np.float64))[0], len(samples) // HOP + 1)


@dataclass(frozen=True)
class VoiceProfile:
    """What WORLD needs to know of the target voice: its pitch (mean and spread of log F0 over voiced frames)
    and its median aperiodicity per linear frequency bin of voiced frames, (FFT // 2 + 1,) in 0..1."""

    log_f0_mean: float
    log_f0_std: float
    aperiodicity: tuple[float, ...]

    @classmethod
    def measure(cls, clips: list[np.ndarray]) -> VoiceProfile:
        """The profile of a voice from some of its recordings (T,) at RATE."""
        pw = _pyworld()
        logs, aps = [], []
        for clip in clips:
            x = np.ascontiguousarray(clip, dtype=np.float64)
            f0, times = _dio(x)
            voiced = f0 > 0
            if voiced.any():
                logs.append(np.log(f0[voiced]))
                # threshold 0: D4C's own voicing test calls every frame of 8 kHz speech unvoiced (all 0.99)
                aps.append(pw.d4c(x, f0, times, RATE, threshold=0.0, fft_size=_grids()[0])[voiced])
        if not logs:
            raise GenlabError("no voiced frame in the target voice's clips: cannot measure its pitch")
        log_f0 = np.concatenate(logs)
        ap = np.median(np.concatenate(aps), axis=0)  # median: robust to the odd noisy frame DIO calls voiced
        return cls(float(log_f0.mean()), float(log_f0.std()), tuple(float(a) for a in ap))


def transpose(f0: np.ndarray, profile: VoiceProfile) -> np.ndarray:
    """(F,) F0 of any voice -> the same melody in the profile's range: log F0 standardised over this
    utterance's voiced frames, then given the profile's mean and spread (unvoiced frames stay 0)."""
    voiced = f0 > 0
    out = np.zeros_like(f0, dtype=np.float64)
    if voiced.sum() < 2:
        return out
    log_f0 = np.log(f0[voiced])
    z = (log_f0 - log_f0.mean()) / max(log_f0.std(), 1e-3)
    out[voiced] = np.exp(profile.log_f0_mean + profile.log_f0_std * z)
    return out


def envelope(frames: np.ndarray) -> np.ndarray:
    """(F, N_MELS) log-mel power -> (F, FFT // 2 + 1) WORLD spectral envelope (linear power): each frame's
    log power interpolated from the mel band centres onto WORLD's linear bins (held flat beyond the first and
    last centre). Slaney's area-normalised bands make a band's power proportional to the mean power density
    under it, so one scale fits every band."""
    _, centres, linear = _grids()
    log_env = np.stack([np.interp(linear, centres, row) for row in np.asarray(frames, dtype=np.float64)])
    return np.exp(log_env)


def world_vocode(frames: np.ndarray, f0: np.ndarray, profile: VoiceProfile) -> np.ndarray:
    """(F, N_MELS) log-mel and (F,) F0 in Hz (0 = unvoiced, already in the voice's range) -> ((F - 1) * HOP,)
    float32 waveform at RATE with peak PEAK."""
    frames = np.asarray(frames, dtype=np.float64)
    f0 = _fit(np.asarray(f0, dtype=np.float64), len(frames))
    spectrum = envelope(frames)
    aperiodicity = np.ones_like(spectrum)  # unvoiced frames: all noise
    aperiodicity[f0 > 0] = np.asarray(profile.aperiodicity)
    wave = _pyworld().synthesize(
        np.ascontiguousarray(f0), np.ascontiguousarray(spectrum), np.ascontiguousarray(aperiodicity), RATE, FRAME_MS
    )
    wave = _fit(wave, (len(frames) - 1) * HOP)
    return (wave * (PEAK / max(float(np.abs(wave).max()), 1e-8))).astype(np.float32)
