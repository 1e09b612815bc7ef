"""A small U-Net for 28x28 images: the velocity (or noise) network of a flow-matching / diffusion process.

x (B, C, 28, 28), a time t (B,) in [0, 1] and an optional condition -> a tensor shaped like x.
The image is first folded into patches (2x2 pixels -> 4 channels, as DiT's patch size 2: a CPU budget
buys 4x more steps), then one residual block per resolution (14 -> 7 by default) on the way down and
up, skip connections between them, and self-attention at the lowest resolution (49 positions: cheap,
and it lets distant parts of a garment agree). Time and condition enter every residual block as one
embedding vector (scale and shift of the normalised features, as in improved DDPM / ADM).

The condition is a class label (B,) (`conditioning: class`), a sentence embedding (B, text_dim)
(`conditioning: text`), or nothing. `drop` (B,) bool replaces a row's condition by a learned "null"
embedding: trained with random drops, one network gives both the conditional and the unconditional
velocity that classifier-free guidance mixes. The network knows nothing of the process that trains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

CONDITIONINGS = ("none", "class", "text")


@dataclass
class UNetConfig:
    channels: int = 1  # image channels
    patch: int = 2  # pixels folded into channels first: 28x28x1 -> 14x14x4 (4x less work per conv)
    width: int = 32  # channels at the first (patch) resolution
    mults: list[int] = field(default_factory=lambda: [1, 2])  # width multiplier per resolution
    attention: bool = True  # self-attention at the lowest resolution
    conditioning: str = "class"  # none | class | text
    num_classes: int = 0  # class conditioning: set from the dataset
    text_dim: int = 384  # text conditioning: the size of the sentence embedding (MiniLM: 384)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"model.conditioning must be one of {', '.join(CONDITIONINGS)}, got '{self.conditioning}'")
        if self.channels < 1 or self.width < 8 or self.width % 8:
            raise ValueError("model.channels must be >= 1 and model.width a positive multiple of 8")
        if self.patch not in (1, 2, 4):
            raise ValueError(f"model.patch must be 1, 2 or 4 (a divisor of 28), got {self.patch}")
        if not self.mults or min(self.mults) < 1:
            raise ValueError("model.mults must be a non-empty list of positive integers")
        if self.num_classes < 0 or self.text_dim < 1 or not 0 <= self.dropout < 1:
            raise ValueError("model.num_classes must be >= 0, model.text_dim >= 1, model.dropout in [0, 1)")


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of t (B,) in [0, 1] -> (B, dim), frequencies as the Transformer's positions
    (t is scaled to [0, 1000] so the slowest waves still vary across the interval)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)  # (half,)
    angles = 1000 * t[:, None].float() * freqs[None]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, scaled and shifted by the embedding, -> conv; plus a 1x1 skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(8, c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity (its skip)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, c_out, H, W)
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)  # (B, c_out, 1, 1) each
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


class Attention(nn.Module):
    """Self-attention over the H*W positions of a feature map, with a residual connection."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(8, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        # (B, heads, HW, c/heads) each
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        width, emb_dim = config.width, 4 * config.width
        self.time_mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if config.conditioning == "class":
            self.cond = nn.Embedding(config.num_classes + 1, emb_dim)  # the last row: the null condition
        elif config.conditioning == "text":
            self.cond = nn.Sequential(nn.Linear(config.text_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
            self.null_text = nn.Parameter(torch.zeros(config.text_dim))
        folded = config.channels * config.patch**2
        self.stem = nn.Conv2d(folded, width, 3, padding=1)
        chans = [width * m for m in config.mults]  # channels per resolution, e.g. [32, 64] at 14x14, 7x7
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c_prev = width
        for i, c in enumerate(chans):
            self.down.append(ResBlock(c_prev, c, emb_dim, config.dropout))
            last = i == len(chans) - 1
            # halve the resolution with a stride-2 conv (an odd size rounds up: 7 -> 4)
            self.downsample.append(nn.Identity() if last else nn.Conv2d(c, c, 3, stride=2, padding=1))
            c_prev = c
        self.mid = ResBlock(c_prev, c_prev, emb_dim, config.dropout)
        self.attn = Attention(c_prev) if config.attention else nn.Identity()
        self.up = nn.ModuleList()
        for c in reversed(chans):
            self.up.append(ResBlock(c_prev + c, c, emb_dim, config.dropout))  # input: [upsampled; skip]
            c_prev = c
        self.out_norm = nn.GroupNorm(8, c_prev)
        self.out = nn.Conv2d(c_prev, folded, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # the first prediction is 0: a calm start for the loss
        nn.init.zeros_(self.out.bias)

    def embedding(self, t: torch.Tensor, cond: torch.Tensor | None, drop: torch.Tensor | None) -> torch.Tensor:
        """Time + condition -> (B, 4*width). `drop` (B,) bool: rows that get the null condition."""
        emb = self.time_mlp(time_features(t, self.config.width))  # (B, E)
        kind = self.config.conditioning
        if kind == "none":
            return emb
        if cond is None:  # no condition at all: every row is the null one
            cond, drop = None, torch.ones(len(t), dtype=torch.bool, device=t.device)
        if kind == "class":
            labels = torch.full((len(t),), self.config.num_classes, device=t.device) if cond is None else cond
            if drop is not None:
                labels = torch.where(drop, torch.full_like(labels, self.config.num_classes), labels)
            return emb + self.cond(labels)
        text = self.null_text.expand(len(t), -1) if cond is None else cond  # (B, text_dim)
        if drop is not None:
            text = torch.where(drop[:, None], self.null_text.expand_as(text), text)
        return emb + self.cond(text)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None, drop: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, C, 28, 28), t (B,), cond (B,) labels or (B, text_dim) embeddings -> (B, C, 28, 28)."""
        emb = self.embedding(t, cond, drop)
        p = self.config.patch
        h = self.stem(F.pixel_unshuffle(x, p))  # (B, C*p*p, 28/p, 28/p) -> (B, width, 28/p, 28/p)
        skips = []
        for block, downsample in zip(self.down, self.downsample):
            h = block(h, emb)
            skips.append(h)
            h = downsample(h)
        h = self.attn(self.mid(h, emb))  # (B, c, lowest resolution)
        for block in self.up:
            skip = skips.pop()
            if h.shape[-1] != skip.shape[-1]:
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = block(torch.cat([h, skip], dim=1), emb)
        return F.pixel_shuffle(self.out(F.silu(self.out_norm(h))), p)  # (B, C, 28, 28)
