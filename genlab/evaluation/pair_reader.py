"""A reader of Moving-MNIST frames: which two digits does this frame show?

The two digits of a Moving-MNIST clip overlap in 88 % of its frames, where no window holds one digit alone,
so reading them one window at a time with an MNIST classifier gets only about half the real frames right.
This reader looks at the whole frame and names the unordered pair at once: 55 classes, (a, b) with a <= b
("a 4 and a 4" included). A small CNN (the evaluators' conv blocks, one more level for the 32x32 frame),
trained on frames of clips made from MNIST's *train* digits only and tested on clips of the held-out
*test* digits; it never trains beside a generator. Its penultimate features stand in for Inception's in
the frame Fréchet distance. The weights ship in `genlab/evaluation/weights/moving-mnist.{safetensors,json}`
(`genlab eval-nets train --data moving-mnist`), checked against their recorded sha256 when loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genlab.data import load_image_dataset
from genlab.data.moving_mnist import MovingMNIST
from genlab.errors import GenlabError
from genlab.evaluation.classifier import (
    ClassifierConfig,
    ImageClassifier,
    features_and_probs,
    fit,
    load_checked,
    write_evaluator,
)

NAME = "moving-mnist"
SIZE = 32  # the reader's frame side: the video models' (Moving MNIST's 64 shrinks by 2x2 block means)
PAIRS = [(a, b) for a in range(10) for b in range(a, 10)]  # the 55 unordered pairs of digits
PAIR_INDEX = torch.full((10, 10), -1, dtype=torch.long)
for _i, (_a, _b) in enumerate(PAIRS):
    PAIR_INDEX[_a, _b] = PAIR_INDEX[_b, _a] = _i
TRAIN_SEED, TEST_SEED = 7, 99  # clip seeds of the reader's own frames (the video evaluation uses 1234)


@dataclass
class PairReaderConfig(ClassifierConfig):
    """The evaluators' CNN, wider, on 32x32 frames (32 -> 16 -> 8 -> 4), naming one of the 55 pairs."""

    channels: tuple[int, int, int] = (32, 64, 128)
    feature_dim: int = 256
    num_classes: int = len(PAIRS)
    side: int = SIZE


def pair_index(digits: torch.Tensor) -> torch.Tensor:
    """(..., 2) digit pairs in any order -> (...,) their class among PAIRS."""
    return PAIR_INDEX[digits[..., 0], digits[..., 1]]


def as_frames(clips: torch.Tensor) -> torch.Tensor:
    """Clips (N, T, S, S) in [0, 1] -> frames (N*T, 1, 32, 32) as the reader sees them (a larger side shrunk by
    block means, as the video models shrink Moving MNIST's 64; a smaller one enlarged)."""
    frames = clips.reshape(-1, 1, *clips.shape[-2:]).float()
    mode = "area" if frames.size(-1) >= SIZE else "bilinear"
    return F.interpolate(frames, size=(SIZE, SIZE), mode=mode) if frames.size(-1) != SIZE else frames


def frames_of(split: str, seed: int, num_clips: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every frame of `num_clips` Moving-MNIST clips of `split`'s digits: (N*T, 1, 32, 32), their pairs (N*T,)."""
    clips = MovingMNIST(load_image_dataset("mnist"), split, seed).batch(range(num_clips))
    frames = as_frames(torch.from_numpy(clips.frames).float() / 255)
    pairs = pair_index(torch.from_numpy(clips.digits)).repeat_interleave(clips.frames.shape[1])
    return frames, pairs


@torch.no_grad()
def frame_accuracy(reader: ImageClassifier, frames: torch.Tensor, pairs: torch.Tensor) -> float:
    return float((features_and_probs(reader, frames)[1].argmax(1) == pairs.numpy()).mean())


def train_pair_reader(out_dir: Path, seed: int = 0, epochs: int = 4, clips: int = 6000) -> dict:
    """Train on every frame of `clips` train-digit clips, test on 1,000 test-digit clips; write the weights."""
    if epochs < 1 or clips < 1:
        raise GenlabError(f"epochs and clips must be positive, got {epochs} and {clips}")
    torch.manual_seed(seed)
    reader = ImageClassifier(PairReaderConfig())
    x_train, y_train = frames_of("train", TRAIN_SEED, clips)
    x_test, y_test = frames_of("test", TEST_SEED, 1000)
    generator = torch.Generator().manual_seed(seed)
    seconds = fit(reader, x_train, y_train, epochs, 128, 2e-3, generator, desc="pair reader")
    info = {
        "dataset": NAME,
        "dataset_source": "Moving-MNIST frames (genlab.data.moving_mnist) of the bundled MNIST digits, 32x32",
        "train_size": len(x_train),
        "train_clips": clips,
        "test_size": len(x_test),
        "test_accuracy": frame_accuracy(reader, x_test, y_test),
        "feature_dim": reader.config.feature_dim,
        "config": asdict(reader.config),
        "seed": seed,
        "epochs": epochs,
        "train_seconds": round(seconds, 1),
    }
    return write_evaluator(reader, NAME, out_dir, info)


def load_pair_reader(weights_dir: Path | None = None) -> ImageClassifier:
    return load_checked(NAME, PairReaderConfig, ImageClassifier, weights_dir)


def read_pairs(reader: ImageClassifier, clips: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Clips (N, T, S, S) in [0, 1] -> the pair probabilities of every frame (N, T, 55), features (N*T, D)."""
    feats, probs = features_and_probs(reader, as_frames(clips))
    return probs.reshape(*clips.shape[:2], -1), feats
