"""A frame-to-frame voice converter: log-mel frames of one voice -> log-mel frames of another, same timing.

A stack of residual 1-D convolutions over time (kernel 5: each layer sees +-20 ms more, the stack about
+-90 ms — a phoneme and its neighbours), then a linear read-out added to the input (the network learns the
change of voice, not the whole spectrum). Fully convolutional: any number of frames.
Shapes: (B, T, n_mels) -> (B, T, n_mels), log mel power (genlab.data.speech_features).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

CENTRE, SCALE = -3.0, 4.0  # log-mel values lie in about [-9.2, 7]: this puts them near [-1.5, 2.5]


@dataclass
class ConverterConfig:
    n_mels: int = 64
    width: int = 192  # channels of the hidden convolutions
    layers: int = 4
    kernel: int = 5

    def __post_init__(self) -> None:
        if min(self.n_mels, self.width, self.layers) < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError("model.n_mels, width and layers must be >= 1 and model.kernel odd")


class Block(nn.Module):
    def __init__(self, width: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.norm = nn.GroupNorm(1, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, width, T)
        return h + torch.nn.functional.gelu(self.norm(self.conv(h)))


class VoiceConverter(nn.Module):
    def __init__(self, config: ConverterConfig):
        super().__init__()
        self.config = config
        self.inp = nn.Conv1d(config.n_mels, config.width, config.kernel, padding=config.kernel // 2)
        self.blocks = nn.Sequential(*[Block(config.width, config.kernel) for _ in range(config.layers)])
        self.out = nn.Conv1d(config.width, config.n_mels, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = ((frames - CENTRE) / SCALE).transpose(1, 2)  # (B, n_mels, T)
        h = self.blocks(torch.nn.functional.gelu(self.inp(x)))
        return frames + SCALE * self.out(h).transpose(1, 2)
