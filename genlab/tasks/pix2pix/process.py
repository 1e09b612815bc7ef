"""The pix2pix / zi2zi training process, apart from the networks: L1 to the true glyph, the adversarial
loss of a PatchGAN that sees (source, glyph) pairs, and zi2zi's font-classification ("category") loss.

Per step: a D step on [(source, truth); (source, G(source).detach())] — BCE on every patch logit, plus the
font head's cross-entropy on the real pairs — then a G step through the updated, frozen D:
  adversarial_weight * non-saturating loss + l1_weight * |G(source) - truth| + category_weight * CE(font)
  + constant_weight * |E(G(source)) - E(source)|^2 (zi2zi's constant loss on the encoder's bottleneck E).
The BCE losses and the freezing are the image GANs' (genlab.tasks.gan.process).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genlab.core.distributed import unwrap
from genlab.models.glyph_unet import GlyphUNet
from genlab.models.patchgan import PatchGAN
from genlab.tasks.gan.process import discriminator_loss, frozen, generator_loss
from genlab.tasks.pix2pix.recipe import TranslationTrainConfig


def translation_step(
    generator: GlyphUNet,
    discriminator: PatchGAN,
    optimizers: dict[str, torch.optim.Optimizer],
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    train: TranslationTrainConfig,
) -> dict[str, float]:
    """One D step and one G step on (source (B, 1, S, S), truth (B, 1, S, S), target-font ids (B,))."""
    source, truth, fonts = batch
    fake = generator(source, fonts)  # (B, 1, S, S)
    metrics = {}
    adversarial = train.adversarial_weight > 0
    if adversarial:
        logits, font_logits = discriminator(torch.cat([source, source]), torch.cat([truth, fake.detach()]))
        real_logits, fake_logits = logits.chunk(2)  # (B, 1, P, P) each
        d_loss = discriminator_loss(real_logits, fake_logits)
        d_category = F.cross_entropy(font_logits[: len(fonts)], fonts)
        optimizers["discriminator"].zero_grad(set_to_none=True)
        (d_loss + train.category_weight * d_category).backward()
        optimizers["discriminator"].step()
        metrics = {"loss/d": d_loss.item(), "loss/d_category": d_category.item()}
    l1 = (fake - truth).abs().mean()
    g_loss = train.l1_weight * l1
    if train.constant_weight:  # zi2zi: the translation keeps the source's code at the bottleneck
        encoder = unwrap(generator)
        constant = F.mse_loss(encoder.encode(fake)[-1], encoder.encode(source)[-1])
        g_loss = g_loss + train.constant_weight * constant
        metrics["loss/constant"] = constant.item()
    if adversarial:
        with frozen(unwrap(discriminator)) as d:  # the bare module: DDP expects no all-reduce for it
            logits, font_logits = d(source, fake)
        g_adv, g_category = generator_loss(logits), F.cross_entropy(font_logits, fonts)
        g_loss = g_loss + train.adversarial_weight * g_adv + train.category_weight * g_category
        metrics.update({"loss/g_adv": g_adv.item(), "loss/g_category": g_category.item()})
    optimizers["generator"].zero_grad(set_to_none=True)
    g_loss.backward()
    optimizers["generator"].step()
    return {"loss/l1": l1.item(), **metrics}
