"""The spoken-digit evaluator: a log-mel front end, a small CNN trained on held-in synthetic voices, and
the scores of generated clips in its feature space (Fréchet distance, Inception-style score, accuracy).

Like the image evaluators (classifier.py), its weights ship in genlab/evaluation/weights/spoken-digits.*
with a sha256 in the json record: scores are comparable only between equal checksums.
The front end (`log_mel`) is fixed and differentiable, so a generator may use it too.
"""

from __future__ import annotations

import functools
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.audio import CORPUS, DIGITS, AudioData, load_audio_dataset
from genlab.errors import GenlabError
from genlab.evaluation.classifier import (
    conv_blocks,
    evaluator_info,
    features_and_probs,
    fit,
    load_checked,
    write_evaluator,
)
from genlab.evaluation.metrics import class_histogram, frechet_distance, inception_score
from genlab.io.audio import CLIP_SAMPLES, SAMPLE_RATE

# Front end: 25 ms Hann windows every 10 ms, zero-padded to a 512-point FFT, 64 mel bands over 20 Hz-8 kHz
# (Slaney mel scale, librosa's default), natural log of the band power. A 1 s clip gives 101 frames
# (center=True pads half a window at each end).
N_FFT = 512
WIN_LENGTH = 400  # 25 ms at 16 kHz
HOP_LENGTH = 160  # 10 ms
N_MELS = 64
F_MIN, F_MAX = 20.0, SAMPLE_RATE / 2
LOG_FLOOR = 1e-6  # log(power + floor): silence sits at log(1e-6) = -13.8 instead of -inf
EMBED_BATCH = 256  # clips through the evaluator at once when scoring
FRAMES = 1 + CLIP_SAMPLES // HOP_LENGTH  # 101

# Augmentation while training, so the net hears what held-out voices, the 8 kHz human recordings and
# imperfect generators produce: speed (pitch + tempo) 0.88-1.12, shifts up to 150 ms, gain 0.3-1.1,
# half the batches low-passed at 3-8 kHz, Gaussian noise of std 1e-4 .. 2e-2.
SPEED_RANGE = (0.88, 1.12)  # < 1 stretches: a word said more slowly and lower
MAX_SHIFT = 2400
GAIN_RANGE = (0.3, 1.1)
LOWPASS_HZ = (3000.0, 8000.0)
NOISE_STD = (1e-4, 2e-2)
DEFAULT_EPOCHS = 12


@functools.lru_cache(maxsize=1)
def mel_filters() -> torch.Tensor:
    """The mel filter bank (n_mels, n_fft // 2 + 1), built once."""
    import librosa  # lazy: only audio users pay for librosa's import

    bank = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX)
    return torch.from_numpy(bank).float()


@functools.lru_cache(maxsize=4)
def _window(device: str) -> torch.Tensor:
    return torch.hann_window(WIN_LENGTH, device=device)


def log_mel(waves: torch.Tensor) -> torch.Tensor:
    """(N, T) waves in [-1, 1] -> (N, 1, N_MELS, 1 + T // HOP_LENGTH) log mel power; differentiable."""
    if waves.ndim != 2:
        raise GenlabError(f"log_mel needs waves (N, T), got shape {tuple(waves.shape)}")
    spec = torch.stft(
        waves.float(),
        N_FFT,
        HOP_LENGTH,
        WIN_LENGTH,
        window=_window(str(waves.device)),
        center=True,
        return_complex=True,
    )  # (N, N_FFT // 2 + 1, frames)
    mel = mel_filters().to(waves.device) @ spec.abs().pow(2)  # (N, N_MELS, frames)
    return torch.log(mel + LOG_FLOOR).unsqueeze(1)


@dataclass
class AudioClassifierConfig:
    channels: tuple[int, ...] = (16, 32, 64, 128)
    feature_dim: int = 128
    num_classes: int = 10
    dropout: float = 0.3


class AudioClassifier(nn.Module):
    """(B, 16000) waves -> log-mel (B, 1, 64, 101) -> conv blocks (64x101 -> 4x6) -> mean over time
    (B, C * 4) -> features (B, D) -> logits (B, num_classes)."""

    def __init__(self, config: AudioClassifierConfig):
        super().__init__()
        self.config = config
        # log-mel levels differ by voice and gain: normalise them first
        self.conv = nn.Sequential(nn.BatchNorm2d(1), *conv_blocks(config.channels))
        mel_bins = N_MELS // 2 ** len(config.channels)
        self.embed = nn.Sequential(nn.Linear(config.channels[-1] * mel_bins, config.feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.num_classes))
        self.info: dict = {}  # the json record, filled by load_audio_evaluator

    def features(self, waves: torch.Tensor) -> torch.Tensor:
        h = self.conv(log_mel(waves))  # (B, C, mel_bins, frames')
        # Averaging over time makes the features indifferent to where in the second the word sits.
        return self.embed(h.mean(dim=3).flatten(1))  # (B, D), post-ReLU like Inception's pool3

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(waves))  # (B, num_classes)


# --- training ------------------------------------------------------------------------------------------


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def augment(waves: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random speed, shift, low-pass, gain and noise per clip (B, T) -> (B, T), all drawn from `generator`."""
    b, t = waves.shape
    # Speed: read the clip at a rate of `speed` samples per output sample, centred, silence beyond it.
    speed = _uniform(b, *SPEED_RANGE, generator)[:, None]  # (B, 1)
    shift = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (b, 1), generator=generator)  # (B, 1)
    pos = (torch.arange(t)[None, :] - t / 2) * speed + t / 2 - shift  # (B, T) fractional source indices
    left = pos.floor().long()
    frac = (pos - left).float()
    padded = F.pad(waves, (1, 2))  # index -1 and t, t+1 read silence

    def at(i: torch.Tensor) -> torch.Tensor:
        return padded.gather(1, (i + 1).clamp(0, t + 2))

    out = at(left) * (1 - frac) + at(left + 1) * frac
    # Low-pass half of the clips (a telephone-band recording has nothing above 4 kHz).
    spectrum = torch.fft.rfft(out, dim=1)  # (B, T // 2 + 1)
    cutoff = _uniform(b, *LOWPASS_HZ, generator)
    cutoff = torch.where(torch.rand(b, generator=generator) < 0.5, cutoff, torch.full_like(cutoff, SAMPLE_RATE))
    freqs = torch.fft.rfftfreq(t, 1 / SAMPLE_RATE)  # (T // 2 + 1,)
    out = torch.fft.irfft(spectrum * (freqs[None, :] <= cutoff[:, None]), n=t, dim=1)
    out = out * _uniform(b, *GAIN_RANGE, generator)[:, None]
    log_std = _uniform(b, float(np.log(NOISE_STD[0])), float(np.log(NOISE_STD[1])), generator)
    out = out + torch.randn(b, t, generator=generator) * log_std.exp()[:, None]
    return out.clamp(-1, 1)


def _accuracy(model: AudioClassifier, data: AudioData) -> float:
    probs = features_and_probs(model, torch.from_numpy(data.waves), EMBED_BATCH)[1]
    return float((probs.argmax(axis=1) == data.labels).mean())


# Recorded beside the weights: what the evaluator hears (log-mel front end) and how its training clips vary.
FRONT_END = {
    "n_fft": N_FFT,
    "win_length": WIN_LENGTH,
    "hop_length": HOP_LENGTH,
    "n_mels": N_MELS,
    "f_min": F_MIN,
    "f_max": F_MAX,
    "log_floor": LOG_FLOOR,
}
AUGMENT = {
    "speed": SPEED_RANGE,
    "max_shift": MAX_SHIFT,
    "gain": GAIN_RANGE,
    "lowpass_hz": LOWPASS_HZ,
    "noise_std": NOISE_STD,
}


def train_audio_evaluator(
    out_dir: str | Path,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = 64,
    lr: float = 3e-3,
    config: AudioClassifierConfig | None = None,
    progress: bool = True,
) -> dict:
    """Train on the train split of spoken-digits, measure on held-out voices and the human recordings,
    write spoken-digits.safetensors + spoken-digits.json into out_dir. Returns the json record."""
    if epochs < 1:
        raise GenlabError(f"epochs must be positive, got {epochs}")
    train, test, human = (load_audio_dataset(CORPUS, split) for split in ("train", "test", "human"))
    config = config or AudioClassifierConfig(num_classes=train.num_classes)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)  # drives shuffling and augmentation, apart from init
    model = AudioClassifier(config)
    x_train, y_train = torch.from_numpy(train.waves), torch.from_numpy(train.labels)
    train_seconds = fit(
        model, x_train, y_train, epochs, batch_size, lr, generator, augment, 0.05, f"evaluator {CORPUS}", progress
    )
    human_pred = features_and_probs(model, torch.from_numpy(human.waves), EMBED_BATCH)[1].argmax(axis=1)
    info = {
        "dataset": CORPUS,
        "dataset_source": train.source,
        "train_size": len(train),
        "test_size": len(test),
        "train_speakers": len(set(train.speakers)),
        "test_speakers": len(set(test.speakers)),
        "test_accuracy": _accuracy(model, test),
        "human_accuracy": float((human_pred == human.labels).mean()),
        "human_predictions": [DIGITS[p] for p in human_pred],
        "human_source": human.source,
        "feature_dim": config.feature_dim,
        "config": asdict(config),
        "front_end": FRONT_END,
        "augment": AUGMENT,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "command": shlex.join(
            ["genlab", "eval-nets", "train", "--data", CORPUS, "--epochs", str(epochs), "--seed", str(seed)]
        ),
        "train_seconds": round(train_seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
    }
    return write_evaluator(model, CORPUS, out_dir, info)


def audio_evaluator_info(weights_dir: Path | None = None) -> dict:
    return evaluator_info(CORPUS, weights_dir)


def load_audio_evaluator(weights_dir: Path | None = None) -> AudioClassifier:
    """The spoken-digit evaluator in eval mode, after checking its weights against the recorded sha256."""
    return load_checked(CORPUS, AudioClassifierConfig, AudioClassifier, weights_dir)


# --- scoring ---------------------------------------------------------------------------------------------

# Reference features and their real-vs-real figures per (source, size, evaluator checksum).
_REAL_CACHE: dict[tuple[str, int, str], tuple[np.ndarray, dict]] = {}


def _as_waves(waves: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = torch.as_tensor(waves).detach().cpu()
    if tensor.ndim != 2 or tensor.shape[1] != CLIP_SAMPLES:
        raise GenlabError(f"clips must have shape (N, {CLIP_SAMPLES}), got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():  # NaN passes every range comparison: check it first
        raise GenlabError("clips hold non-finite values (NaN or inf): the generator has diverged")
    if len(tensor) and tensor.abs().max() > 1:
        raise GenlabError(f"clips must lie in [-1, 1], got a peak of {tensor.abs().max().item():.3g}")
    return tensor.float()


def _halves(speakers: list[str]) -> np.ndarray:
    """Mask of the first half of a reference: every other speaker (sorted), so the halves share no voice."""
    order = {s: i for i, s in enumerate(sorted(set(speakers)))}
    mask = np.array([order[s] % 2 == 0 for s in speakers])
    if len(set(speakers)) < 2:  # one speaker: alternate clips instead
        mask = np.arange(len(speakers)) % 2 == 0
    return mask


def _score_probs(probs: np.ndarray, labels: np.ndarray | None) -> dict:
    is_mean, is_std = inception_score(probs, splits=min(10, len(probs)))
    histogram = class_histogram(probs, probs.shape[1])
    return {
        "accuracy": None if labels is None else float((probs.argmax(axis=1) == labels).mean()),
        "inception_score": {"mean": is_mean, "std": is_std},
        "label_histogram": {name: float(f) for name, f in zip(DIGITS, histogram)},
        "min_label_fraction": float(histogram.min()),  # a dropped digit shows up here
    }


def reference_scores(reference: AudioData, evaluator: AudioClassifier) -> tuple[np.ndarray, dict]:
    """Features (N, D) of the real clips and their `ceiling`: accuracy, IS, histogram, and the Fréchet
    distance between two speaker-disjoint halves (the floor a perfect generator reaches, for half as many clips)."""
    key = (f"{reference.name} {reference.source}", len(reference), evaluator.info.get("sha256", str(id(evaluator))))
    if key not in _REAL_CACHE:
        feats, probs = features_and_probs(evaluator, torch.from_numpy(reference.waves), EMBED_BATCH)
        ceiling = {"num_clips": len(reference), **_score_probs(probs, reference.labels)}
        half = _halves(reference.speakers)
        ceiling["frechet_distance"] = (
            frechet_distance(feats[half], feats[~half]) if min(half.sum(), (~half).sum()) >= 2 else None
        )
        _REAL_CACHE[key] = (feats, ceiling)
    return _REAL_CACHE[key]


def evaluate_clips(
    waves: np.ndarray | torch.Tensor,
    evaluator: AudioClassifier,
    requested_labels: np.ndarray | torch.Tensor | None = None,
    reference: AudioData | None = None,
) -> dict:
    """Score clips (N, 16000) in [-1, 1] against real ones (default: the held-out test voices).

    accuracy: how often the evaluator hears the requested digit (None without requested_labels);
    frechet_distance: between the clips' and the reference's evaluator features; inception_score;
    label_histogram: fraction of clips heard as each digit; ceiling: the same for the real clips, whose
    frechet_distance is the real-vs-real floor. Plain floats and dicts, ready for json.
    """
    clips = _as_waves(waves)
    if len(clips) < 2:
        raise GenlabError(f"scoring needs at least 2 clips, got {len(clips)}")
    labels = None
    if requested_labels is not None:
        labels = torch.as_tensor(requested_labels).cpu().numpy().astype(np.int64)
        if labels.shape != (len(clips),):
            raise GenlabError(f"requested_labels must have shape ({len(clips)},), got {labels.shape}")
    reference = reference if reference is not None else load_audio_dataset(CORPUS, "test")
    real_feats, ceiling = reference_scores(reference, evaluator)
    feats, probs = features_and_probs(evaluator, clips, EMBED_BATCH)
    return {
        "num_clips": len(clips),
        **_score_probs(probs, labels),
        "frechet_distance": frechet_distance(real_feats, feats),
        "ceiling": ceiling,
        "reference": reference.source,
        "evaluator": {
            "dataset": evaluator.info.get("dataset", CORPUS),
            "sha256": evaluator.info.get("sha256"),
            "test_accuracy": evaluator.info.get("test_accuracy"),
            "human_accuracy": evaluator.info.get("human_accuracy"),
        },
    }
