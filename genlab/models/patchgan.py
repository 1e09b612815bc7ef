"""The PatchGAN discriminator of pix2pix (Isola et al. 2017), with zi2zi's font-classification head.

(B, 1, S, S) source glyph + (B, 1, S, S) candidate glyph -> (B, 1, P, P) real/fake logits, one per
overlapping patch (each sees a square of about 34 pixels at the default depth 3), and (B, F) logits of
which target font the candidate is in (zi2zi's "category loss": the generator is pushed to draw the font it
was asked for, not just any real-looking font).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class PatchGANConfig:
    width: int = 32  # channels after the first convolution; doubled per level
    depth: int = 3  # stride-2 levels: 64 -> 8x8 patches at depth 3
    num_fonts: int = 1

    def __post_init__(self) -> None:
        if self.width < 1 or self.depth < 1 or self.num_fonts < 1:
            raise ValueError("discriminator width, depth and num_fonts must be >= 1")


class PatchGAN(nn.Module):
    def __init__(self, config: PatchGANConfig):
        super().__init__()
        self.config = config
        chans = [config.width * 2**i for i in range(config.depth)]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip([2, *chans], chans)):
            layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
            layers += [nn.GroupNorm(min(8, c_out), c_out)] if i else []
            layers.append(nn.LeakyReLU(0.2))
        self.features = nn.Sequential(*layers)
        self.patch = nn.Conv2d(chans[-1], 1, 3, padding=1)
        self.font = nn.Linear(chans[-1], config.num_fonts)

    def forward(self, source: torch.Tensor, glyph: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(torch.cat([source, glyph], dim=1))  # (B, C, S / 2**depth, S / 2**depth)
        return self.patch(h), self.font(h.mean(dim=(2, 3)))  # (B, 1, P, P), (B, F)
