"""Parallel utterances for voice conversion: each Allison prompt said again by synthetic voices, the two
log-mel sequences DTW-aligned so that frame i of the synthetic rendering has the target's frame(s) that say
the same sound. The target is Allison's recording (TARGET_ALLISON) or another synthetic voice saying the
prompt's text (ENGINE:NAME, e.g. flite:slt). Cached per (voice, target, prompt) under
$GENLAB_DATA_DIR/allison-pairs/ (an .npz each: the pair is re-made only when its settings change).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genlab.data.images import cache_root
from genlab.data.speech import Prompt, load_prompts, read_prompt, synthesize
from genlab.data.speech_features import HOP, N_FFT, N_MELS, log_mel, warp_to_source
from genlab.data.speech_vocoder import VoiceProfile
from genlab.errors import GenlabError
from genlab.io.files import atomic_write, atomic_write_text

PAIRS_VERSION = 1  # bump when the features or the alignment change
TARGET_ALLISON = "allison"  # the human voice: the recordings themselves
PROFILE_CLIPS = 24  # training prompts the target voice's pitch and aperiodicity are measured on (about 2 s CPU)


@dataclass
class Pairs:
    """Aligned frames of many utterances, concatenated: source (F, N_MELS) and target (F, N_MELS), with the
    utterance boundaries `starts` (U + 1,) so that utterance u is frames starts[u]:starts[u + 1]."""

    source: np.ndarray
    target: np.ndarray
    starts: np.ndarray

    def chunks(self, frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Non-overlapping `frames`-long windows inside utterances: (N, frames, N_MELS) source and target."""
        picks = [s for a, b in zip(self.starts[:-1], self.starts[1:]) for s in range(a, b - frames + 1, frames)]
        if not picks:
            raise GenlabError(f"no utterance is {frames} frames long ({frames * HOP} samples); use fewer frames")
        index = np.asarray(picks)[:, None] + np.arange(frames)  # (N, frames)
        return self.source[index], self.target[index]


def _cache_file(voice: str, prompt: Prompt, rate_wpm: int, target: str) -> Path:
    key = f"{PAIRS_VERSION}|{voice}|{rate_wpm}|{prompt.name}|{prompt.text}|{N_FFT}|{HOP}|{N_MELS}"
    key += "" if target == TARGET_ALLISON else f"|{target}"  # Allison's pairs keep the keys they were cached by
    return cache_root() / "allison-pairs" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


def target_frames(target: str, prompt: Prompt, rate_wpm: int) -> np.ndarray:
    """(F, N_MELS) log-mel of `prompt` in the target voice: Allison's recording, or `target` saying its text."""
    return log_mel(target_waveform(target, prompt, rate_wpm))


def target_waveform(target: str, prompt: Prompt, rate_wpm: int) -> np.ndarray:
    """(T,) `prompt` in the target voice at RATE: Allison's recording, or `target` saying its text."""
    return read_prompt(prompt) if target == TARGET_ALLISON else synthesize(target, prompt.text, rate_wpm)


def target_profile(target: str, rate_wpm: int, clips: int = PROFILE_CLIPS) -> VoiceProfile:
    """The WORLD vocoder's picture of the target voice (pitch range, aperiodicity), measured on `clips`
    training prompts spread over the split; cached under $GENLAB_DATA_DIR/allison-pitch/ as JSON."""
    key = f"{PAIRS_VERSION}|{target}|{rate_wpm}|{clips}"
    path = cache_root() / "allison-pitch" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        return VoiceProfile(saved["log_f0_mean"], saved["log_f0_std"], tuple(saved["aperiodicity"]))
    train = load_prompts("train")
    picked = train[:: max(1, len(train) // clips)][:clips]
    profile = VoiceProfile.measure([target_waveform(target, p, rate_wpm) for p in picked])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(dataclasses.asdict(profile)))
    return profile


def aligned_pair(
    voice: str, prompt: Prompt, rate_wpm: int, target: str = TARGET_ALLISON
) -> tuple[np.ndarray, np.ndarray]:
    """(source log-mel (F, N_MELS), the target voice's log-mel warped onto it (F, N_MELS)), cached."""
    path = _cache_file(voice, prompt, rate_wpm, target)
    if path.is_file():
        with np.load(path) as saved:
            return saved["source"], saved["target"]
    source = log_mel(synthesize(voice, prompt.text, rate_wpm))
    aligned = warp_to_source(source, target_frames(target, prompt, rate_wpm))
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, source=source, target=aligned)

    atomic_write(path, write)
    return source, aligned


def parallel_pairs(voices: list[str], prompts: list[Prompt], rate_wpm: int, target: str = TARGET_ALLISON) -> Pairs:
    """Every voice saying every prompt, aligned to the target voice saying it, as one Pairs (voice-major)."""
    sources, targets = [], []
    for voice in voices:
        for prompt in prompts:
            source, target_ = aligned_pair(voice, prompt, rate_wpm, target)
            sources.append(source)
            targets.append(target_)
    starts = np.concatenate([[0], np.cumsum([len(s) for s in sources])])
    return Pairs(np.concatenate(sources), np.concatenate(targets), starts)
