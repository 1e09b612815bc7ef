"""Text or a voice -> Allison's voice: the synthetic rendering's log-mel frames, converted frame by frame
(genlab.models.voice_converter), then a vocoder at 8 kHz (WORLD, with the rendering's own pitch moved into the
target voice's range, or Griffin-Lim) and upsampled to 16 kHz for the output file.

The front end is espeak-ng: it turns the text into phonemes with their durations and says them; the
converter keeps that timing and changes the voice (docs/speech.md says why this design).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from genlab.data.speech import RATE, check_text, synthesize
from genlab.data.speech_features import LOG_FLOOR, filter_toward, griffin_lim, log_mel
from genlab.data.speech_pairs import target_profile
from genlab.data.speech_vocoder import VoiceProfile, pitch_track, transpose, world_vocode
from genlab.io.audio import SAMPLE_RATE, resample
from genlab.models.voice_converter import VoiceConverter


@dataclass(frozen=True)
class Vocoder:
    """Converted log-mel frames -> a waveform: `griffin-lim` (eval.vocoder's default), `world` or `differential`.
    WORLD takes its pitch from the recording the frames were converted from, moved into the target voice's range;
    `differential` filters that recording itself toward the converted frames' envelope."""

    name: str
    target: str  # the run's data.target: whose pitch range and aperiodicity WORLD speaks with
    rate_wpm: int
    griffin_lim_iters: int = 32

    @functools.cached_property
    def profile(self) -> VoiceProfile:
        return target_profile(self.target, self.rate_wpm)  # measured once per target, then cached on disk

    def __call__(self, frames: np.ndarray, source: np.ndarray) -> np.ndarray:
        """(F, n_mels) converted log-mel and the (T,) recording at RATE it came from -> ((F - 1) * HOP,)."""
        if self.name == "griffin-lim":
            return griffin_lim(frames, self.griffin_lim_iters)
        if self.name == "differential":
            return filter_toward(frames, source)
        return world_vocode(frames, transpose(pitch_track(source), self.profile), self.profile)


@torch.no_grad()
def convert_frames(model: VoiceConverter, frames: np.ndarray) -> np.ndarray:
    """(F, n_mels) log-mel of any voice -> (F, n_mels) log-mel in the trained voice."""
    was_training = model.training
    model.eval()
    out = model(torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))[None])[0]
    model.train(was_training)
    return out.numpy()


def speak(
    model: VoiceConverter, voice: str, text: str, rate_wpm: int, vocoder: Vocoder
) -> tuple[np.ndarray, np.ndarray]:
    """(16 kHz waveform (T,), converted log-mel (F, n_mels)) of `text`, said by `voice` then converted."""
    return convert_wave(model, synthesize(voice, check_text(text), rate_wpm), vocoder)


def convert_wave(model: VoiceConverter, samples: np.ndarray, vocoder: Vocoder) -> tuple[np.ndarray, np.ndarray]:
    """A recording at RATE (T,) -> (16 kHz waveform in the trained voice, its log-mel)."""
    frames = convert_frames(model, log_mel(samples))
    return to_output(vocoder(frames, samples)), frames


def to_output(samples: np.ndarray) -> np.ndarray:
    """8 kHz -> the 16 kHz of genlab's audio files (no new high frequencies: the band above 4 kHz is empty)."""
    return resample(samples, RATE, SAMPLE_RATE)


def mel_image(frames: np.ndarray) -> torch.Tensor:
    """(F, n_mels) log-mel -> (n_mels, F) image in [-1, 1] (the floor at -1, the loudest cell at 1), low
    frequencies first, as genlab.io.audio_clips.GeneratedAudio draws them."""
    x = torch.from_numpy(np.asarray(frames, dtype=np.float32)).T
    return ((x - LOG_FLOOR) / (x.max() - LOG_FLOOR).clamp_min(1e-6)) * 2 - 1
