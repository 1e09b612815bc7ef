"""WAV files and the one shape every genlab clip has: 16 kHz mono, exactly one second, peak 0.9.

Samples are float32 in [-1, 1]; on disk they are 16-bit PCM, scaled by 32768 both ways (what libsndfile
does when it reads PCM_16 as float), so a write-then-read round trip moves a sample by at most half a step.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from genlab.errors import GenlabError, first_line
from genlab.io.files import atomic_write_bytes

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # one second, the SC09 shape
PEAK = 0.9  # fit_clip's peak: headroom so a generator's tanh output can reach it

# Silence trimming works on 10 ms frames: a frame is sound when its RMS is within SILENCE_DB of the
# loudest frame. -40 dB keeps the soft "f"/"th"/"s" edges of digit words and drops the synthesizers'
# leading/trailing pauses (and low hiss in recordings).
TRIM_FRAME = 160
SILENCE_DB = -40.0
WAV_FORMATS = ("WAV", "WAVEX")


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples (T,) float32 in [-1, 1], rate) of a WAV file; stereo is averaged to mono."""
    import soundfile as sf  # lazy: only audio users pay for libsndfile

    path = Path(path)
    if not path.is_file():  # libsndfile would only say "System error"
        raise GenlabError(f"{path}: no such file")
    try:
        info = sf.info(str(path))
        if info.format not in WAV_FORMATS:
            raise GenlabError(f"{path} is not a WAV file (it is {info.format_info})")
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (T, channels)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise GenlabError(f"{path} is not a readable WAV file ({first_line(exc)})") from None
    if len(data) == 0:
        raise GenlabError(f"{path} holds no samples")
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(rate)


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> int16, rounding to the nearest step (values beyond +-1 are clipped)."""
    scaled = np.round(np.asarray(samples, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def from_pcm16(pcm: np.ndarray) -> np.ndarray:
    return (np.asarray(pcm, dtype=np.float32) / np.float32(32768.0)).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE, name: str = "samples") -> bytes:
    """Mono samples (T,) in [-1, 1] as the bytes of a 16-bit PCM WAV file."""
    import soundfile as sf

    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise GenlabError(f"{name}: samples must be mono (T,), got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise GenlabError(f"{name}: samples hold non-finite values (NaN or inf)")
    buffer = io.BytesIO()
    sf.write(buffer, to_pcm16(samples), int(rate), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_wav(path: str | Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Write mono samples (T,) in [-1, 1] as a 16-bit PCM WAV, atomically."""
    return atomic_write_bytes(path, wav_bytes(samples, rate, name=f"write_wav {path}"))


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly, its Kaiser anti-alias filter) to float32."""
    from scipy.signal import resample_poly

    samples = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate:
        return samples.copy()
    g = math.gcd(int(from_rate), int(to_rate))
    return resample_poly(samples, int(to_rate) // g, int(from_rate) // g).astype(np.float32)


def _sound_span(samples: np.ndarray) -> tuple[int, int]:
    """[start, end) sample range from the first to the last frame louder than SILENCE_DB below the loudest."""
    n_frames = -(-len(samples) // TRIM_FRAME)
    padded = np.zeros(n_frames * TRIM_FRAME, dtype=np.float64)
    padded[: len(samples)] = samples
    rms = np.sqrt((padded.reshape(n_frames, TRIM_FRAME) ** 2).mean(axis=1))  # (frames,)
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (SILENCE_DB / 20))
    return int(loud[0]) * TRIM_FRAME, min(len(samples), (int(loud[-1]) + 1) * TRIM_FRAME)


def fit_clip(samples: np.ndarray, length: int = CLIP_SAMPLES) -> np.ndarray:
    """Trim leading/trailing silence, centre the sound in exactly `length` samples, peak-normalise to 0.9.

    A sound longer than `length` keeps its middle `length` samples. Silence (all zeros) stays zeros.
    Deterministic: the same input always gives the same bytes. Returns (length,) float32.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise GenlabError(f"fit_clip needs mono samples (T,), got shape {samples.shape}")
    if length < 1:
        raise GenlabError(f"fit_clip length must be positive, got {length}")
    if not np.isfinite(samples).all():
        raise GenlabError("fit_clip: samples hold non-finite values (NaN or inf)")
    out = np.zeros(length, dtype=np.float32)
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    if peak == 0.0:
        return out
    start, end = _sound_span(samples)
    sound = samples[start:end]
    if len(sound) > length:
        cut = (len(sound) - length) // 2
        sound = sound[cut : cut + length]
    offset = (length - len(sound)) // 2
    out[offset : offset + len(sound)] = sound
    peak = float(np.abs(out).max())
    if peak == 0.0:  # only possible after a crop that kept nothing audible
        return out
    return (out * np.float32(PEAK / peak)).astype(np.float32)
