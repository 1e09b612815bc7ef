"""From clips to the model's scale and back, and from a request to clips.

Clips are made at Moving MNIST's 64x64 and shrunk to the model's side by block means (a 32x32 model
sees each 2x2 block's mean); the network works on pixels in [-1, 1], users see [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genlab.errors import GenlabError
from genlab.models.video_spacetime import SpaceTimeUNet
from genlab.models.video_unet import ClipNetwork, VideoUNet, VideoUNetConfig
from genlab.tasks.video.process import sample_clips

MAX_CLIPS = 1000  # clips per call: bounds memory


def video_network(config: VideoUNetConfig) -> ClipNetwork:
    """The network of `model.layout`: frames stacked as channels, or per-frame blocks with attention across them."""
    return SpaceTimeUNet(config) if config.layout == "factorised" else VideoUNet(config)


def to_model(frames: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """(B, T, S, S) uint8 (or float in [0, 1]) with S a multiple of `size` -> (B, T, size, size) in [-1, 1]."""
    x = torch.as_tensor(frames)
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    side = x.size(-1)
    if side != size:
        if side % size:
            raise GenlabError(f"frames of side {side} do not shrink to the model's {size}x{size}")
        x = F.avg_pool2d(x, side // size)
    return x * 2 - 1


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) / 2).clamp(0, 1)


def check_clips(n: int) -> None:
    if not 1 <= n <= MAX_CLIPS:
        raise GenlabError(f"--n must be in 1..{MAX_CLIPS}, got {n}")


def sample_frames(
    net: ClipNetwork,
    noise: torch.Tensor,
    given: torch.Tensor,
    mask: torch.Tensor,
    digits: torch.Tensor | None,
    steps: int,
    guidance: float,
) -> torch.Tensor:
    """Clips (B, T, S, S) in [0, 1] from noise (B, planes, grid, grid) in the network's space: `given`
    (B, T, S, S) in [-1, 1] kept exactly where `mask` (B, T) is 1 (a latent model redraws only the others)."""
    planes = sample_clips(net, noise, net.encode(given), net.plane_mask(mask), digits, steps, guidance)
    keep = mask[:, :, None, None]
    return to_pixels(keep * given + (1 - keep) * net.decode(planes))


@torch.no_grad()
def draw(
    net: ClipNetwork,
    seed: int,
    given: torch.Tensor,
    mask: torch.Tensor,
    digits: torch.Tensor | None,
    steps: int,
    guidance: float,
    batch_size: int = 100,
) -> torch.Tensor:
    """Clips (B, T, H, W) in [0, 1]: `given` (B, T, H, W) in [-1, 1] kept where `mask` (B, T) is 1."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    c = net.config
    noise = torch.randn(given.size(0), c.planes, c.grid, c.grid, generator=torch.Generator().manual_seed(seed))
    out = torch.empty(given.shape)
    for i in range(0, given.size(0), batch_size):
        j = min(given.size(0), i + batch_size)
        rows = None if digits is None else digits[i:j].to(device)
        x = sample_frames(
            net, noise[i:j].to(device), given[i:j].to(device), mask[i:j].to(device), rows, steps, guidance
        )
        out[i:j] = x.cpu()
    net.train(was_training)
    return out
