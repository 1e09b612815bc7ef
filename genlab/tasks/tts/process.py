"""Text or a voice -> Allison's voice: the synthetic rendering's log-mel frames, converted frame by frame
(genlab.models.voice_converter), then Griffin-Lim at 8 kHz and upsampled to 16 kHz for the output file.

The front end is espeak-ng: it turns the text into phonemes with their durations and says them; the
converter keeps that timing and changes the voice (docs/speech.md says why this design).
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.data.speech import RATE, check_text, synthesize
from genlab.data.speech_features import LOG_FLOOR, griffin_lim, log_mel
from genlab.io.audio import SAMPLE_RATE, resample
from genlab.models.voice_converter import VoiceConverter


@torch.no_grad()
def convert_frames(model: VoiceConverter, frames: np.ndarray) -> np.ndarray:
    """(F, n_mels) log-mel of any voice -> (F, n_mels) log-mel in the trained voice."""
    was_training = model.training
    model.eval()
    out = model(torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))[None])[0]
    model.train(was_training)
    return out.numpy()


def speak(model: VoiceConverter, voice: str, text: str, rate_wpm: int, n_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """(16 kHz waveform (T,), converted log-mel (F, n_mels)) of `text`, said by `voice` then converted."""
    frames = convert_frames(model, log_mel(synthesize(voice, check_text(text), rate_wpm)))
    return to_output(griffin_lim(frames, n_iter)), frames


def convert_wave(model: VoiceConverter, samples: np.ndarray, n_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """A recording at RATE (T,) -> (16 kHz waveform in the trained voice, its log-mel)."""
    frames = convert_frames(model, log_mel(samples))
    return to_output(griffin_lim(frames, n_iter)), frames


def to_output(samples: np.ndarray) -> np.ndarray:
    """8 kHz -> the 16 kHz of genlab's audio files (no new high frequencies: the band above 4 kHz is empty)."""
    return resample(samples, RATE, SAMPLE_RATE)


def mel_image(frames: np.ndarray) -> torch.Tensor:
    """(F, n_mels) log-mel -> (n_mels, F) image in [-1, 1] (the floor at -1, the loudest cell at 1), low
    frequencies first, as genlab.io.audio_clips.GeneratedAudio draws them."""
    x = torch.from_numpy(np.asarray(frames, dtype=np.float32)).T
    return ((x - LOG_FLOOR) / (x.max() - LOG_FLOOR).clamp_min(1e-6)) * 2 - 1
