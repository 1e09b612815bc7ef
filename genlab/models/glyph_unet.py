"""The pix2pix U-Net generator (Isola et al. 2017) with a style embedding at its bottleneck (zi2zi).

(B, 1, S, S) source glyph in [0, 1] + (B,) target-font ids -> (B, 1, S, S) glyph in the target font.
Encoder: `depth` stride-2 4x4 convolutions (S -> S / 2**depth), GroupNorm (not pix2pix's BatchNorm: the
output of one glyph must not depend on the other glyphs of its batch) and LeakyReLU(0.2). At the bottleneck
the target font's learned vector is broadcast and concatenated to the features (zi2zi's category
embedding), so one generator draws every font it was trained on. Decoder: stride-2 4x4 transposed
convolutions back up, each concatenated with the encoder features of its resolution (the U-Net's skips,
which carry the character's structure past the bottleneck); a sigmoid gives ink in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class GlyphUNetConfig:
    size: int = 64  # glyph side in pixels (a run sets it from data.size)
    width: int = 32  # channels after the first convolution; doubled per level up to max_width
    max_width: int = 256
    depth: int = 5  # stride-2 levels: 64 -> 2 at depth 5
    style_dim: int = 64  # the font embedding's size
    dropout: float = 0.0  # pix2pix's decoder dropout (0.5 there) on the three deepest up levels, in training only
    fonts: list[str] = field(default_factory=list)  # the target fonts, in embedding-row order (set from data)

    def __post_init__(self) -> None:
        if self.width < 1 or self.max_width < self.width or self.style_dim < 1:
            raise ValueError("model.width and model.style_dim must be >= 1 and model.max_width >= model.width")
        if not 0 <= self.dropout < 1:
            raise ValueError("model.dropout must be in 0..1")
        if self.depth < 1 or self.size % 2**self.depth:
            raise ValueError(f"model.depth must be >= 1 with data size {self.size} divisible by 2**depth")

    def channels(self) -> list[int]:
        """Encoder output channels per level: width, 2 width, 4 width, ... capped at max_width."""
        return [min(self.width * 2**i, self.max_width) for i in range(self.depth)]


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class GlyphUNet(nn.Module):
    def __init__(self, config: GlyphUNetConfig):
        super().__init__()
        self.config = config
        chans = config.channels()
        self.style = nn.Embedding(max(1, len(config.fonts)), config.style_dim)
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip([1, *chans], chans)):
            layers = [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)]
            layers += [_norm(c_out)] if i else []  # pix2pix: no norm on the first layer
            self.down.append(nn.Sequential(*layers, nn.LeakyReLU(0.2)))
        self.up = nn.ModuleList()
        # Up level j (deepest first) takes the previous level's output (+ the style, at the bottleneck) and the
        # skip of the encoder level it mirrors, except at the bottleneck where input and skip are the same.
        ins = [chans[-1] + config.style_dim] + [2 * c for c in reversed(chans[1:-1])]
        outs = list(reversed(chans[:-1]))
        for j, (c_in, c_out) in enumerate(zip(ins, outs)):
            layers = [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), _norm(c_out), nn.ReLU()]
            layers += [nn.Dropout(config.dropout)] if config.dropout and j < 3 else []  # last: keeps the names
            self.up.append(nn.Sequential(*layers))
        self.out = nn.ConvTranspose2d(2 * chans[0], 1, 4, stride=2, padding=1)

    def encode(self, source: torch.Tensor) -> list[torch.Tensor]:
        """(B, 1, S, S) glyph -> the encoder's output at every level, (B, c_i, S / 2**(i+1), ...); the last is
        the bottleneck (zi2zi's constant loss compares a glyph's and its translation's)."""
        skips = []
        h = source
        for layer in self.down:
            h = layer(h)
            skips.append(h)
        return skips

    def forward(self, source: torch.Tensor, fonts: torch.Tensor) -> torch.Tensor:
        skips = self.encode(source)  # (B, 1, S, S) -> per level (B, c_i, S / 2**(i+1), S / 2**(i+1))
        h = skips[-1]
        style = self.style(fonts)[:, :, None, None].expand(-1, -1, h.size(2), h.size(3))  # (B, style_dim, s, s)
        h = torch.cat([h, style], dim=1)
        for layer, skip in zip(self.up, reversed(skips[:-1])):
            h = torch.cat([layer(h), skip], dim=1)  # (B, 2 c, 2 s, 2 s)
        return torch.sigmoid(self.out(h))  # (B, 1, S, S) ink in [0, 1]
