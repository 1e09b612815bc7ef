"""GAN generators and discriminators for 28x28 grey-scale images.

`mlp` is exactly the essay's pair (§5). `dcgan` is a small convolutional pair. Either becomes
class-conditional with `num_classes > 0`: the generator reads [z, one-hot(y)], the discriminator adds
a projection term <embed(y), h> to its logit (Miyato & Koyama 2018), which keeps its layers unchanged.
Generators output images in [0, 1] of shape (B, 1, 28, 28); discriminators output logits (B,).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError

IMAGE_SHAPE = (1, 28, 28)
IMAGE_PIXELS = 28 * 28
MAX_SAMPLES = 50_000  # images per sample_images call: bounds memory (the standard FID sample size)


@dataclass
class GANConfig:
    arch: str = "mlp"  # mlp | dcgan
    latent_dim: int = 100
    num_classes: int = 0  # 0 = unconditional; set from the dataset when `conditional` is on
    conditional: bool = False
    width: int = 64  # dcgan only: channels of the first conv block

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"model.arch must be one of {sorted(ARCHITECTURES)}, got '{self.arch}'")
        if self.latent_dim < 1 or self.width < 1:
            raise ValueError("model.latent_dim and model.width must be positive")


class Generator(nn.Module):
    """Shared conditioning logic: z (B, latent) [+ one-hot label] -> body -> (B, 1, 28, 28)."""

    def __init__(self, config: GANConfig, body: nn.Module):
        super().__init__()
        self.config = config
        self.body = body

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.config.num_classes:
            if labels is None:
                raise ValueError("this generator is conditional: pass labels")
            z = torch.cat([z, F.one_hot(labels, self.config.num_classes).to(z.dtype)], dim=1)
        return self.body(z).view(-1, *IMAGE_SHAPE)


class Discriminator(nn.Module):
    """features: (B, 1, 28, 28) -> h (B, F); logit = linear(h) [+ <embed(y), h>]."""

    def __init__(self, config: GANConfig, features: nn.Module, feature_dim: int):
        super().__init__()
        self.config = config
        self.features = features
        self.head = nn.Linear(feature_dim, 1)
        self.embed = nn.Embedding(config.num_classes, feature_dim) if config.num_classes else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(images)  # (B, F)
        logit = self.head(h).squeeze(1)  # (B,)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass labels")
            logit = logit + (self.embed(labels) * h).sum(dim=1)
        return logit


def _mlp_pair(config: GANConfig) -> tuple[Generator, Discriminator]:
    # The essay's layers, unchanged; only the conditional input widens the first Linear of G.
    g_body = nn.Sequential(
        nn.Linear(config.latent_dim + config.num_classes, 256),
        nn.ReLU(),
        nn.Linear(256, 512),
        nn.ReLU(),
        nn.Linear(512, 1024),
        nn.ReLU(),
        nn.Linear(1024, IMAGE_PIXELS),
        nn.Sigmoid(),
    )
    d_features = nn.Sequential(
        nn.Flatten(),
        nn.Linear(IMAGE_PIXELS, 1024),
        nn.ReLU(),
        nn.Linear(1024, 512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.ReLU(),
    )  # the essay's final Linear 256 -> 1 is the Discriminator head
    return Generator(config, g_body), Discriminator(config, d_features, 256)


def _dcgan_pair(config: GANConfig) -> tuple[Generator, Discriminator]:
    w = config.width
    g_body = nn.Sequential(
        nn.Linear(config.latent_dim + config.num_classes, 2 * w * 7 * 7),
        nn.Unflatten(1, (2 * w, 7, 7)),
        nn.BatchNorm2d(2 * w),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1),
        nn.BatchNorm2d(w),
        nn.ReLU(),  # (B, w, 14, 14)
        nn.ConvTranspose2d(w, 1, 4, stride=2, padding=1),
        nn.Sigmoid(),  # (B, 1, 28, 28)
    )
    # No normalisation in D: the R1 penalty regularises it, and batch statistics would couple
    # real and fake samples.
    d_features = nn.Sequential(
        nn.Conv2d(1, w, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),  # (B, w, 14, 14)
        nn.Conv2d(w, 2 * w, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),  # (B, 2w, 7, 7)
        nn.Flatten(),
    )
    return Generator(config, g_body), Discriminator(config, d_features, 2 * w * 7 * 7)


ARCHITECTURES = {"mlp": _mlp_pair, "dcgan": _dcgan_pair}


def build_gan(config: GANConfig) -> tuple[Generator, Discriminator]:
    return ARCHITECTURES[config.arch](config)


def _check_request(config: GANConfig, n: int, label: int | None) -> None:
    num_classes = config.num_classes
    if n < 1:
        raise GenlabError(f"--n must be at least 1, got {n}")
    if n > MAX_SAMPLES:
        raise GenlabError(
            f"--n {n} is more than the {MAX_SAMPLES:,} images one call draws (about "
            f"{MAX_SAMPLES * IMAGE_PIXELS * 4 / 2**20:.0f} MB); draw several batches with other "
            "--seed values"
        )
    if label is not None and not num_classes:
        raise GenlabError("--label needs a class-conditional model; this one is unconditional")
    if label is not None and not 0 <= label < num_classes:
        raise GenlabError(f"--label must be in 0..{num_classes - 1}, got {label}")


def _labels(config: GANConfig, n: int, label: int | None) -> torch.Tensor | None:
    """(n,) the class of each image: `label`, or 0..K-1 in turn; None for an unconditional model."""
    if not config.num_classes:
        return None
    return torch.full((n,), label) if label is not None else torch.arange(n) % config.num_classes


@torch.no_grad()
def sample_images(
    generator: Generator,
    n: int,
    seed: int,
    label: int | None = None,
    batch_size: int = 1000,
    fixed_z: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n images (n, 1, 28, 28) in [0, 1] and the labels asked for (cycling 0..K-1 when label is None).

    The noise comes from `seed`, or is `fixed_z` (n, latent) when given (the per-epoch sample grid).
    """
    _check_request(generator.config, n, label)
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    noise = torch.Generator().manual_seed(seed)
    labels = _labels(generator.config, n, label)
    images = torch.empty(n, *IMAGE_SHAPE)  # filled in place: no second copy of all n images
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        z = (
            fixed_z[start : start + size]
            if fixed_z is not None
            else torch.randn(size, generator.config.latent_dim, generator=noise)
        ).to(device)
        chunk_labels = labels[start : start + len(z)].to(device) if labels is not None else None
        images[start : start + size] = generator(z, chunk_labels).cpu()
    generator.train(was_training)
    return images, labels


@torch.no_grad()
def sample_together(
    generator: Generator, requests: list[tuple[int, int, int | None]], batch_size: int = 1000
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Several `sample_images(generator, n, seed, label)` requests in one forward pass (the server
    batches concurrent clients this way): the same images as separate calls, each request drawing
    its noise from its own seed. Requests of more than `batch_size` images are drawn alone."""
    if any(n > batch_size for n, _, _ in requests):
        return [sample_images(generator, n, seed, label, batch_size) for n, seed, label in requests]
    config = generator.config
    for n, _, label in requests:
        _check_request(config, n, label)
    z = torch.cat(
        [torch.randn(n, config.latent_dim, generator=torch.Generator().manual_seed(seed)) for n, seed, _ in requests]
    )  # (sum n, latent)
    labels = [_labels(config, n, label) for n, _, label in requests]
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    images = generator(z.to(device), torch.cat(labels).to(device) if config.num_classes else None).cpu()
    generator.train(was_training)
    return list(zip(images.split([n for n, _, _ in requests]), labels))
