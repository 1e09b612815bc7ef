"""The GAN's training process, kept apart from the networks it trains: losses, R1, the optimisers, and
the adversarial step that the image GANs (genlab.tasks.gan) and the audio GAN (genlab.tasks.audio) share.

Losses take discriminator logits: BCE-with-logits written with softplus,
BCE(sigmoid(l), 1) = softplus(-l) and BCE(sigmoid(l), 0) = softplus(l).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import torch
import torch.nn.functional as F

from genlab.core.distributed import DistEnv, unwrap, wrap_ddp
from genlab.core.ema import SamplerEMA


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


class AdversarialTrain(Protocol):
    """What the adversarial step reads from a GAN's train section (GanTrainConfig, the audio GAN's)."""

    lr_g: float
    lr_d: float
    betas: list[float]
    r1_gamma: float
    r1_every: int
    ema_decay: float


class AdversarialPair:
    """A generator and a discriminator trained against each other on one device set: one Adam each, the
    network samples come from (an EMA of G when `ema_decay` > 0), and the step that trains them.

    Per step: a D step on [real; G(z).detach()] (plus, every `r1_every` steps, R1 on the real inputs with
    its weight scaled up to match, as StyleGAN2's lazy R1), then a non-saturating G step through the
    freshly updated D, then the EMA update.
    """

    def __init__(
        self,
        generator: torch.nn.Module,
        discriminator: torch.nn.Module,
        train: AdversarialTrain,
        env: DistEnv,
    ):
        self.env = env
        self.generator = wrap_ddp(generator.to(env.device), env)
        self.discriminator = wrap_ddp(discriminator.to(env.device), env)
        self.modules = {"generator": generator, "discriminator": discriminator}
        self.ema = SamplerEMA(self.modules, "generator", train.ema_decay)
        self.optimizers = gan_optimizers(generator, discriminator, train.lr_g, train.lr_d, tuple(train.betas))
        self.r1_every = train.r1_every
        self.r1_weight = train.r1_gamma / 2 * train.r1_every

    def step_kind(self, step: int) -> str:
        return "d+g+r1" if self.r1_weight and step % self.r1_every == 0 else "d+g"

    def rank_share(self, global_draw: torch.Tensor) -> torch.Tensor:
        """This rank's share of a draw made for the whole global batch (the same draw on every rank)."""
        local = len(global_draw) // self.env.world_size
        return global_draw[self.env.rank * local : (self.env.rank + 1) * local].to(self.env.device)

    def step(
        self,
        real: torch.Tensor,
        z: torch.Tensor,
        labels: torch.Tensor | None,
        step: int,
        augment: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
    ) -> dict[str, float]:
        """One D step and one G step on real (B, ...) inputs and noise z (B, latent_dim); `augment` is
        applied to every input D sees (differentiably, so that G learns through it)."""
        fake = self.generator(z, labels)  # (B, ...) like real

        # D step: one forward over [real; fake] so DDP sees a single forward per backward.
        use_r1 = self.step_kind(step).endswith("r1")
        real = real.requires_grad_(use_r1)
        both_labels = torch.cat([labels, labels]) if labels is not None else None
        logits = self.discriminator(torch.cat([augment(real), augment(fake.detach())]), both_labels)  # (2B,)
        real_logits, fake_logits = logits.chunk(2)
        d_loss = discriminator_loss(real_logits, fake_logits)
        loss, metrics = d_loss, {}
        if use_r1:
            penalty = r1_penalty(real_logits, real)
            loss = loss + self.r1_weight * penalty
            metrics["r1"] = penalty.item()
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["discriminator"].step()

        # G step through the updated D, frozen: the pass computes no weight gradients for D. The bare
        # module is used, so DDP expects no all-reduce for it.
        with frozen(unwrap(self.discriminator)) as discriminator:
            g_loss = generator_loss(discriminator(augment(fake), labels))
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        self.ema.update(step)
        return {
            "loss/d": d_loss.item(),
            "loss/g": g_loss.item(),
            "d/real_prob": torch.sigmoid(real_logits).mean().item(),
            "d/fake_prob": torch.sigmoid(fake_logits).mean().item(),
            **metrics,
        }
