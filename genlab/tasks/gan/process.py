"""The GAN's training process, kept apart from the networks it trains: losses, R1, the EMA generator.

Losses take discriminator logits: BCE-with-logits written with softplus,
BCE(sigmoid(l), 1) = softplus(-l) and BCE(sigmoid(l), 0) = softplus(l).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The essay's BCE objective for D: real -> 1, fake -> 0."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss: maximise log D(G(z)) rather than minimise log(1 - D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """Mescheder et al. 2018: E ||grad_x D(x)||^2 on real data (real_images must require grad)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


@torch.no_grad()
def update_ema(averaged: torch.nn.Module, live: torch.nn.Module, decay: float, step: int) -> None:
    """averaged <- decay * averaged + (1 - decay) * live, with a short warm-up so the average does not
    drag the random initial weights along; buffers (BatchNorm statistics) are copied."""
    decay = min(decay, (1 + step) / (10 + step))
    for avg, current in zip(averaged.parameters(), live.parameters()):
        avg.lerp_(current, 1 - decay)
    for avg, current in zip(averaged.buffers(), live.buffers()):
        avg.copy_(current)
