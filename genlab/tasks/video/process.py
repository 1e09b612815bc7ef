"""Masked-frame flow matching: one process for prediction, in-betweening and generation of clips.

A clip x1 (B, T, H, W) in [-1, 1] and a frame mask (B, T) (1 = the frame is given). The straight path
from noise x0 to x1 is flow matching's (genlab/tasks/flow/process.py, on which this builds); the network
sees x_t with the given frames put back clean, plus the mask, and is scored only on the frames it must
make. Sampling is flow's Euler sampler with its inpainting start: the given frames are the kept part.

The network predicts the clean clip x1, not the velocity (x-prediction, as in Li & He 2025, "Back to
Basics: Let Denoising Generative Models Denoise"): with the 20 frames stacked as channels, a velocity
x1 - x0 holds 80 independent noise values per 2x2 patch, more than the network's 48 channels can carry,
and a velocity-predicting run left salt-and-pepper noise in every frame (docs/video.md). The clean clip
is nearly all background; the velocity the sampler integrates is (x1_hat - x_t) / (1 - t).

Which frames are given is the use:
- predict: the first `context` frames (Moving MNIST's 10 -> 10);
- between: the first and the last frame (in-betweening, animation's key frames);
- generate: none (the clip from its two digits alone, guided by classifier-free guidance).
Training mixes the three, so one network learns them all.
"""

from __future__ import annotations

import torch

from genlab.errors import GenlabError
from genlab.tasks.flow.process import Start, interpolate, sample, sample_times

MODES = ("predict", "between", "generate")
MIN_GAP = 0.05  # 1 - t is kept above this in (x1_hat - x) / (1 - t): the last steps stay finite


def velocity(clean: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The straight path's velocity at x (B, ...) and time t (B,) towards a predicted clean end `clean`."""
    return (clean - x) / (1 - t).clamp(min=MIN_GAP).view(-1, *([1] * (x.dim() - 1)))


def mode_mask(mode: str, frames: int, context: int) -> torch.Tensor:
    """(T,) float: 1 on the frames `mode` gives the model."""
    mask = torch.zeros(frames)
    if mode == "predict":
        mask[:context] = 1
    elif mode == "between":
        mask[0] = mask[-1] = 1
    elif mode != "generate":
        raise GenlabError(f"--mode must be one of {', '.join(MODES)}, got '{mode}'")
    return mask


def training_masks(
    n: int, frames: int, context: int, generator: torch.Generator, uses: tuple[str, ...] = MODES
) -> torch.Tensor:
    """(n, T): each row one of `uses` in turn from a random start (equal shares), the masks of mode_mask."""
    first = int(torch.randint(len(uses), (1,), generator=generator))
    return torch.stack([mode_mask(uses[(first + i) % len(uses)], frames, context) for i in range(n)])


def masked_flow_loss(
    net: torch.nn.Module,
    x1: torch.Tensor,
    mask: torch.Tensor,
    digits: torch.Tensor | None,
    generator: torch.Generator,
    cond_dropout: float,
    logit_normal: bool = True,
) -> torch.Tensor:
    """Mean squared error of the predicted clean frames, over the frames to make, for clips x1 (B, T, H, W)
    and masks (B, T).
    Noise, times and condition drops come from `generator` (on the CPU: the same draws on any device)."""
    n = x1.size(0)
    x0 = torch.randn(x1.shape, generator=generator).to(x1.device)
    t = sample_times(n, generator, logit_normal).to(x1.device)
    # Prediction and in-betweening are asked without digits (a user gives frames, not labels): their rows
    # always train with the null condition; generation rows lose their digits at the rate cond_dropout.
    drop = ((torch.rand(n, generator=generator) < cond_dropout) | (mask.sum(1).cpu() > 0)).to(x1.device)
    planes = mask[:, :, None, None]  # (B, T, 1, 1)
    x_in = planes * x1 + (1 - planes) * interpolate(x0, x1, t)  # given frames clean, the rest at time t
    error = (net(x_in, mask, t, digits, drop) - x1).pow(2) * (1 - planes)
    return error.sum() / ((1 - planes).sum() * x1.size(-1) * x1.size(-2)).clamp(min=1)


class MaskedVelocity(torch.nn.Module):
    """The network as flow's sampler calls it, v(x, t, digits, drop): the velocity towards the clean clip it
    predicts from x with the given frames `given` (B, T, H, W) and `mask` (B, T) put in. A guided step
    doubles the batch (conditional rows, then unconditional ones): given frames and mask are then taken twice."""

    def __init__(self, net: torch.nn.Module, given: torch.Tensor, mask: torch.Tensor):
        super().__init__()
        self.net, self.given, self.mask = net, given, mask

    def forward(self, x: torch.Tensor, t: torch.Tensor, digits: torch.Tensor | None, drop: torch.Tensor | None):
        given = torch.cat([self.given, self.given])[: x.size(0)]  # slices: an exported batch stays symbolic
        mask = torch.cat([self.mask, self.mask])[: x.size(0)]
        planes = mask[:, :, None, None]
        return velocity(self.net(planes * given + (1 - planes) * x, mask, t, digits, drop), x, t)


def sample_clips(
    net: torch.nn.Module,
    noise: torch.Tensor,
    given: torch.Tensor,
    mask: torch.Tensor,
    digits: torch.Tensor | None,
    steps: int,
    guidance: float,
) -> torch.Tensor:
    """Clips (B, T, H, W) in [-1, 1] from noise (B, T, H, W): the given frames (mask 1) kept exactly,
    the others drawn by `steps` Euler steps at guidance weight `guidance` (used only with digits)."""
    start = Start(given, 1.0, 1 - mask[:, :, None, None])  # inpainting: redraw where the mask is 0
    return sample(MaskedVelocity(net, given, mask), noise, steps, digits, guidance, start)
