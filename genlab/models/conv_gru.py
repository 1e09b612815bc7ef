"""A small convolutional GRU that predicts frames: the recurrent baseline of video prediction.

ConvLSTM / ConvGRU (Shi et al. 2015; Ballas et al. 2016) keep a hidden feature map and update it with
convolutions instead of matrix products, so motion is carried as a spatial state. Each frame (B, 1, S, S)
is encoded by a stride-2 conv to (B, C, S/2, S/2), fed to a ConvGRU cell, and the hidden state decoded
back (a conv to 4 channels, unfolded 2x2) to the next frame's logits. Given frames are read one by one; after them the
model feeds itself its own predictions (trained that way too, so it learns to roll out).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ConvGRUConfig:
    hidden: int = 48  # channels of the hidden state
    kernel: int = 3  # the recurrent convolution's kernel


class ConvGRUCell(nn.Module):
    def __init__(self, c_in: int, hidden: int, kernel: int):
        super().__init__()
        self.gates = nn.Conv2d(c_in + hidden, 2 * hidden, kernel, padding=kernel // 2)  # update z, reset r
        self.candidate = nn.Conv2d(c_in + hidden, hidden, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        n = torch.tanh(self.candidate(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * n


class ConvGRUPredictor(nn.Module):
    def __init__(self, config: ConvGRUConfig):
        super().__init__()
        self.config = config
        c = config.hidden
        self.encode = nn.Sequential(nn.Conv2d(1, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2))
        self.cell = ConvGRUCell(c, c, config.kernel)
        self.decode = nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.PixelShuffle(2))  # (B, 1, S, S) logits

    def forward(self, given: torch.Tensor, horizon: int) -> torch.Tensor:
        """given (B, T0, S, S) in [0, 1] -> the next `horizon` frames (B, horizon, S, S) in [0, 1]."""
        b, t0, s, _ = given.shape
        h = given.new_zeros(b, self.config.hidden, s // 2, s // 2)
        frame, out = None, []
        for i in range(t0 + horizon - 1):
            x = given[:, i : i + 1] if i < t0 else frame  # (B, 1, S, S): a given frame, then its own prediction
            h = self.cell(self.encode(x), h)
            frame = torch.sigmoid(self.decode(h))
            if i >= t0 - 1:
                out.append(frame)
        return torch.cat(out, 1)


def prediction_loss(model: ConvGRUPredictor, clips: torch.Tensor, context: int) -> torch.Tensor:
    """Mean squared error of the frames after `context` in clips (B, T, S, S) in [0, 1]."""
    pred = model(clips[:, :context], clips.size(1) - context)
    return F.mse_loss(pred, clips[:, context:])
