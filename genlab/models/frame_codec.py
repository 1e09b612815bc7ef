"""A per-frame convolutional autoencoder: the latent space a latent video flow model works in.

Each frame (S, S) in [-1, 1] becomes `channels` planes of side S/4 and back. A video flow model over these
latents (genlab.models.video_unet with `latent` > 0) sees a 20-frame 32x32 clip as 20 x 4 planes of 8x8
instead of 20 planes of 32x32: each network pass is about 4x cheaper, and the decoder, trained only on
real frames, draws whatever latents it gets as digit strokes rather than as blurred ink (the argument of
latent diffusion, Rombach et al. 2022, at the scale of MNIST). Latents are divided by `scale` (their
standard deviation over a batch of real frames, set once by `calibrate`) so the flow's noise and data
have the same size.
"""

from __future__ import annotations

import torch
from torch import nn


def _encoder(width: int, channels: int) -> nn.Sequential:
    """(N, 1, S, S) -> (N, channels, S/4, S/4)."""
    return nn.Sequential(  # strided from the first layer: every training step encodes every frame of its clips
        nn.Conv2d(1, width, 4, stride=2, padding=1),  # S/2
        nn.SiLU(),
        nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # S/4
        nn.SiLU(),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1),
        nn.SiLU(),
        nn.Conv2d(2 * width, channels, 1),
    )


def _decoder(width: int, channels: int) -> nn.Sequential:
    """(N, channels, S/4, S/4) -> (N, 1, S, S)."""
    return nn.Sequential(
        nn.Conv2d(channels, 2 * width, 3, padding=1),
        nn.SiLU(),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1),
        nn.SiLU(),
        nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),  # S/2
        nn.SiLU(),
        nn.ConvTranspose2d(width, width, 4, stride=2, padding=1),  # S
        nn.SiLU(),
        nn.Conv2d(width, 1, 3, padding=1),
    )


class FrameCodec(nn.Module):
    def __init__(self, channels: int, width: int):
        super().__init__()
        self.channels = channels
        self.encoder, self.decoder = _encoder(width, channels), _decoder(width, channels)
        self.register_buffer("scale", torch.ones(()))  # the latents' standard deviation (calibrate)

    def encode(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, S, S) in [-1, 1] -> (B, T * channels, S/4, S/4), frame t's planes at t*channels..."""
        b, t, s, _ = clips.shape
        z = self.encoder(clips.reshape(b * t, 1, s, s)) / self.scale
        return z.reshape(b, t * self.channels, *z.shape[-2:])

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, T * channels, h, h) -> (B, T, 4h, 4h), in [-1, 1] where the codec is trained."""
        b, h = latents.size(0), latents.size(-1)
        x = self.decoder(latents.reshape(-1, self.channels, h, h) * self.scale)
        return x.reshape(b, -1, *x.shape[-2:])

    def reconstruction_loss(self, frames: torch.Tensor, generator: torch.Generator, noise: float) -> torch.Tensor:
        """L1 + squared error of frames (N, 1, S, S) in [-1, 1] decoded from their latents plus Gaussian noise
        of `noise` times the latents' spread: the decoder learns to draw clean digits from latents that a
        flow sampler gets only approximately right."""
        z = self.encoder(frames)
        jitter = torch.randn(z.shape, generator=generator).to(z.device) * noise * z.detach().std()
        error = self.decoder(z + jitter) - frames
        return error.abs().mean() + error.pow(2).mean()

    @torch.no_grad()
    def calibrate(self, clips: torch.Tensor) -> None:
        """Set `scale` to the standard deviation of the latents of clips (B, T, S, S)."""
        self.scale.fill_(1.0)
        self.scale.copy_(self.encode(clips).std())
