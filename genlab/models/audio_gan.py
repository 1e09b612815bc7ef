"""A class-conditional GAN pair for 64 x 64 log-mel spectrograms (images in [-1, 1], mel bands x frames).

Generator: [z, one-hot(y)] -> Linear -> (8w, 4, 4) -> four (nearest x2 upsample, 3x3 conv, BatchNorm, ReLU)
blocks halving the channels (8w at 4x4 ... w/2 at 64x64) -> 3x3 conv -> tanh: (B, 1, 64, 64); each block
costs the same, 18,432 w^2 multiply-adds per clip. Upsample + conv rather than transposed convolutions:
their checkerboard pattern would be a comb of false harmonics in a spectrogram, heard as a buzz.
The label enters G by `g_conditioning`:
- "input": one-hot(y) concatenated to z only (Mirza & Osindero 2014), the plain baseline;
- "batchnorm": also a per-class gain and bias in every BatchNorm (conditional BatchNorm, as BigGAN), so
  every block is told the digit, not only the first Linear.
Discriminator: four 4x4 stride-2 convs (64 -> 4) with LeakyReLU and no normalisation (R1 regularises it),
features h (B, 8w * 16); logit = linear(h) plus, by `d_conditioning`:
- "projection": <embed(y), h> (Miyato & Koyama 2018), the conditioning genlab's conditional image GANs use;
- "concat": the label as K one-hot planes stacked onto the input image (Mirza & Osindero 2014), the
  plain conditional GAN, kept as the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SPEC_SHAPE = (1, 64, 64)  # (channel, mel bands, frames)
D_CONDITIONINGS = ("projection", "concat")
G_CONDITIONINGS = ("batchnorm", "input")


@dataclass
class AudioGANConfig:
    latent_dim: int = 128
    num_classes: int = 10  # set from the data set's class names
    width: int = 16  # w: G's channels at 32 x 32 and D's first layer; both double per halving of size
    d_conditioning: str = "projection"  # projection | concat
    g_conditioning: str = "batchnorm"  # batchnorm | input

    def __post_init__(self) -> None:
        if self.g_conditioning not in G_CONDITIONINGS:
            raise ValueError(
                f"model.g_conditioning must be one of {', '.join(G_CONDITIONINGS)}, got '{self.g_conditioning}'"
            )
        if self.d_conditioning not in D_CONDITIONINGS:
            raise ValueError(
                f"model.d_conditioning must be one of {', '.join(D_CONDITIONINGS)}, got '{self.d_conditioning}'"
            )
        if min(self.latent_dim, self.num_classes) < 1 or self.width < 2 or self.width % 2:
            raise ValueError("model.latent_dim and model.num_classes must be positive, model.width even and >= 2")


class LabelBatchNorm(nn.Module):
    """BatchNorm whose gain and bias are picked by the label (B,) when `num_classes` > 0, else learnt once."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=not num_classes)
        self.gain = nn.Embedding(num_classes, channels) if num_classes else None
        self.bias = nn.Embedding(num_classes, channels) if num_classes else None
        if self.gain is not None:
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)  # (B, C, H, W)
        if self.gain is None:
            return x
        return x * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


class UpBlock(nn.Module):
    """(B, c_in, H, W) -> nearest x2 -> 3x3 conv -> (label) BatchNorm -> ReLU: (B, c_out, 2H, 2W)."""

    def __init__(self, c_in: int, c_out: int, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm = LabelBatchNorm(c_out, num_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2, mode="nearest")), labels))


class SpecGenerator(nn.Module):
    def __init__(self, config: AudioGANConfig):
        super().__init__()
        self.config = config
        w = config.width
        k = config.num_classes if config.g_conditioning == "batchnorm" else 0  # classes the norms know
        self.stem = nn.Linear(config.latent_dim + config.num_classes, 8 * w * 4 * 4)
        self.stem_norm = LabelBatchNorm(8 * w, k)
        channels = [8 * w, 4 * w, 2 * w, w, w // 2]  # at 4, 8, 16, 32, 64 pixels
        self.blocks = nn.ModuleList(UpBlock(a, b, k) for a, b in zip(channels, channels[1:]))
        self.out = nn.Conv2d(w // 2, 1, 3, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """z (B, latent), labels (B,) -> (B, 1, 64, 64) in [-1, 1]."""
        y = F.one_hot(labels, self.config.num_classes).to(z.dtype)
        h = self.stem(torch.cat([z, y], dim=1)).unflatten(1, (-1, 4, 4))  # (B, 8w, 4, 4)
        h = F.relu(self.stem_norm(h, labels))
        for block in self.blocks:
            h = block(h, labels)  # ... -> (B, w/2, 64, 64)
        return torch.tanh(self.out(h))


class SpecDiscriminator(nn.Module):
    def __init__(self, config: AudioGANConfig):
        super().__init__()
        self.config = config
        w, k = config.width, config.num_classes
        c_in = 1 + (k if config.d_conditioning == "concat" else 0)
        self.features = nn.Sequential(
            nn.Conv2d(c_in, w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),  # (B, w, 32, 32)
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),  # (B, 2w, 16, 16)
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),  # (B, 4w, 8, 8)
            nn.Conv2d(4 * w, 8 * w, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),  # (B, 8w, 4, 4)
            nn.Flatten(),
        )
        feature_dim = 8 * w * 4 * 4
        self.head = nn.Linear(feature_dim, 1)
        self.embed = nn.Embedding(k, feature_dim) if config.d_conditioning == "projection" else None

    def forward(self, specs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """specs (B, 1, 64, 64), labels (B,) -> logits (B,)."""
        if self.embed is None:  # concat: (B, 1 + K, 64, 64)
            planes = F.one_hot(labels, self.config.num_classes).to(specs.dtype)[:, :, None, None]
            specs = torch.cat([specs, planes.expand(-1, -1, *specs.shape[2:])], dim=1)
        h = self.features(specs)  # (B, 8w * 16)
        logit = self.head(h).squeeze(1)
        if self.embed is not None:
            logit = logit + (self.embed(labels) * h).sum(dim=1)
        return logit


def build_audio_gan(config: AudioGANConfig) -> tuple[SpecGenerator, SpecDiscriminator]:
    return SpecGenerator(config), SpecDiscriminator(config)
