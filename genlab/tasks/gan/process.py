"""The GAN's training process, kept apart from the networks it trains: losses, R1, the optimisers.

Losses take discriminator logits: BCE-with-logits written with softplus,
BCE(sigmoid(l), 1) = softplus(-l) and BCE(sigmoid(l), 0) = softplus(l).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


def gan_optimizers(
    generator: torch.nn.Module, discriminator: torch.nn.Module, lr_g: float, lr_d: float, betas: tuple[float, float]
) -> dict[str, torch.optim.Adam]:
    """One Adam per network, as the essay. Fused: one pass over a network's parameters per step instead of
    about ten multi-tensor passes, which at the essay's sizes took a quarter of the step. The same update;
    the float rounding differs from the multi-tensor Adam in the last bits."""
    return {
        "generator": torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas, fused=True),
        "discriminator": torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas, fused=True),
    }


@contextmanager
def frozen(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The module's parameters need no gradient in the forward passes inside: a G step's pass through D
    then records only what G needs (gradients with respect to D's input), not D's weight gradients, which
    the G step would discard anyway — a tenth of the step's matmuls. The same numbers for G."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)
