"""Small per-dataset CNN whose features stand in for Inception features in FID / precision / recall.

An Inception net cannot be downloaded here, and it was trained on natural images anyway; a classifier
trained on the dataset itself gives features that see exactly what matters for 28x28 digits/clothes.
Weights ship in `genlab/evaluation/weights/{dataset}.safetensors` with a `{dataset}.json` beside them
recording their sha256, so scores computed anywhere are comparable only if the checksum matches.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.core.progress import progress_bar
from genlab.data import IMAGE_DATASETS, load_image_dataset
from genlab.data.augment import random_shift
from genlab.errors import GenlabError
from genlab.io.files import atomic_write_text, read_json
from genlab.io.weights import load_module, save_tensors

WEIGHTS_DIR = Path(__file__).parent / "weights"

# Reach the target accuracy within a few CPU minutes: the 4k mnist subset needs many passes and
# 2-pixel shifts so it does not overfit; the 60k fashion-mnist needs only a few, barely augmented.
DEFAULT_EPOCHS = {"mnist": 30, "fashion-mnist": 5}
DEFAULT_MAX_SHIFT = {"mnist": 2, "fashion-mnist": 1}


@dataclass
class ClassifierConfig:
    channels: tuple[int, int, int] = (16, 32, 64)
    feature_dim: int = 128
    num_classes: int = 10
    dropout: float = 0.3
    side: int = 28  # input side; three 2x2 pools leave side // 8 (28 -> 3)


def conv_blocks(channels: tuple[int, ...]) -> list[nn.Module]:
    """An evaluator's conv stack from one input channel, as a flat list (the layers keep the names
    conv.<i> that the shipped weights use): per entry of `channels`, a 3x3 convolution without bias,
    BatchNorm, ReLU and a 2x2 max-pool that halves height and width."""
    blocks: list[nn.Module] = []
    for in_ch, out_ch in zip((1, *channels), channels):
        blocks += [
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
    return blocks


class ImageClassifier(nn.Module):
    """(B, 1, side, side) in [0, 1] -> three conv blocks (side -> side // 8: 28 -> 3, 32 -> 4) -> features (B, D)
    -> logits."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        self.conv = nn.Sequential(*conv_blocks(config.channels), nn.Flatten())
        pooled = config.channels[-1] * (config.side // 8) ** 2  # channels x the side left after three pools
        self.embed = nn.Sequential(nn.Linear(pooled, config.feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.num_classes))
        self.info: dict = {}  # the json record, filled by load_evaluator

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # Post-ReLU penultimate layer, like Inception's pool3 features used by FID.
        return self.embed(self.conv(x))  # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, num_classes)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float().div_(255).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1]


@torch.no_grad()
def accuracy(model: ImageClassifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = sum(
        (model(images[i : i + batch_size]).argmax(1) == labels[i : i + batch_size]).sum().item()
        for i in range(0, len(images), batch_size)
    )
    return correct / len(images)


@torch.no_grad()
def features_and_probs(net: nn.Module, inputs: torch.Tensor, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """An evaluator net's features (N, D) and class probabilities (N, C) as float64, batch by batch."""
    net.eval()
    feats, probs = [], []
    for i in range(0, len(inputs), batch_size):
        h = net.features(inputs[i : i + batch_size].float())  # (B, D)
        feats.append(h.double().numpy())
        probs.append(net.head(h).softmax(dim=1).double().numpy())  # (B, C)
    if not feats:
        return np.zeros((0, net.config.feature_dim)), np.zeros((0, net.config.num_classes))
    return np.concatenate(feats), np.concatenate(probs)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_evaluator(
    dataset_name: str,
    out_dir: Path,
    seed: int = 0,
    epochs: int | None = None,
    batch_size: int = 128,
    lr: float = 2e-3,
    max_shift: int | None = None,
    config: ClassifierConfig | None = None,
) -> dict:
    """Train on the train split, measure on the test split, write {dataset}.safetensors + .json.

    `epochs=None` / `max_shift=None` take the per-dataset defaults. Returns the json record.
    """
    if dataset_name not in IMAGE_DATASETS:
        raise GenlabError(f"unknown image dataset '{dataset_name}' (known: {', '.join(IMAGE_DATASETS)})")
    epochs = DEFAULT_EPOCHS[dataset_name] if epochs is None else epochs
    max_shift = DEFAULT_MAX_SHIFT[dataset_name] if max_shift is None else max_shift
    if epochs < 1:
        raise GenlabError(f"epochs must be positive, got {epochs}")
    data = load_image_dataset(dataset_name)
    config = config or ClassifierConfig(num_classes=data.num_classes)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)  # drives shuffling and shifts, separate from init
    model = ImageClassifier(config)
    x_train, y_train = to_tensor(data.train_images), torch.from_numpy(data.train_labels)
    x_test, y_test = to_tensor(data.test_images), torch.from_numpy(data.test_labels)
    shift = (lambda images, generator: random_shift(images, max_shift, generator)) if max_shift else None
    seconds = fit(model, x_train, y_train, epochs, batch_size, lr, generator, shift, desc=f"evaluator {dataset_name}")
    info = {
        "dataset": dataset_name,
        "dataset_source": data.source,
        "train_size": len(x_train),
        "test_size": len(x_test),
        "test_accuracy": accuracy(model, x_test, y_test),
        "feature_dim": config.feature_dim,
        "config": asdict(config),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "max_shift": max_shift,
        "train_seconds": round(seconds, 1),
    }
    return write_evaluator(model, dataset_name, out_dir, info)


def fit(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    label_smoothing: float = 0.0,
    desc: str = "evaluator",
    progress: bool = True,
) -> float:
    """Train an evaluator net with cross-entropy: AdamW under a one-cycle schedule (a fast warm-up, then
    annealing: high accuracy in few epochs without tuning), the batches in a fresh order each epoch, each
    through `augment` (drawing from `generator`). Returns the seconds it took."""
    steps_per_epoch = -(-len(x_train) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    start = time.perf_counter()
    bar = progress_bar(epochs * steps_per_epoch, desc=desc, unit="batch", disable=not progress)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            inputs = augment(x_train[idx], generator) if augment else x_train[idx]
            loss = F.cross_entropy(model(inputs), y_train[idx], label_smoothing=label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    bar.close()
    return time.perf_counter() - start


def write_evaluator(model: nn.Module, name: str, out_dir: str | Path, info: dict) -> dict:
    """{name}.safetensors and its json record `info` (with the weights' sha256 added) into out_dir;
    returns the record."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = out_dir / f"{name}.safetensors"
    save_tensors(weights_path, model.state_dict())
    info = {**info, "sha256": sha256_of(weights_path)}
    atomic_write_text(out_dir / f"{name}.json", json.dumps(info, indent=2) + "\n")
    return info


def evaluator_info(dataset_name: str, weights_dir: Path | None = None) -> dict:
    """The json record written beside the weights (sha256, test accuracy, ...)."""
    path = Path(weights_dir or WEIGHTS_DIR) / f"{dataset_name}.json"
    if not path.is_file():
        raise GenlabError(
            f"no evaluator for '{dataset_name}' ({path} missing); run `genlab eval-nets train --data {dataset_name}`"
        )
    info = read_json(path, f"evaluator record (run `genlab eval-nets train --data {dataset_name}`)")
    if not isinstance(info, dict) or "sha256" not in info or "config" not in info:
        raise GenlabError(f"{path} is not an evaluator record; run `genlab eval-nets train --data {dataset_name}`")
    return info


def load_checked(name: str, config_type: type, net_type: type[nn.Module], weights_dir: Path | None = None) -> nn.Module:
    """Evaluator net `name` (an image data set, or the spoken-digit corpus) in eval mode, built as
    net_type(config_type(**record["config"])), after checking its weights against the recorded sha256."""
    info = evaluator_info(name, weights_dir)
    path = Path(weights_dir or WEIGHTS_DIR) / f"{name}.safetensors"
    hint = f"run `genlab eval-nets train --data {name}`"
    if not path.is_file():
        raise GenlabError(f"evaluator weights {path} missing; {hint}")
    if sha256_of(path) != info["sha256"]:
        raise GenlabError(f"evaluator weights {path} do not match the sha256 in {path.with_suffix('.json')}; {hint}")
    config = config_type(**{**info["config"], "channels": tuple(info["config"]["channels"])})
    model = load_module(net_type(config), path)
    model.info = info
    return model.eval()


def load_evaluator(dataset_name: str, weights_dir: Path | None = None) -> ImageClassifier:
    """The evaluator for a dataset in eval mode, after checking its weights against the recorded sha256."""
    return load_checked(dataset_name, ClassifierConfig, ImageClassifier, weights_dir)


def evaluator_or_none(dataset_name: str) -> ImageClassifier | None:
    """The dataset's evaluator, or None when it has none (a training then skips its quick scores)."""
    try:
        return load_evaluator(dataset_name)
    except GenlabError:
        return None
