"""The VQGAN's losses, apart from the networks (genlab/models/vqgan.py).

The autoencoder minimises (Esser et al. 2021, with two substitutions this machine forces):
  L1(x, x_hat) + beta |z - sg(q)|^2                  reconstruction and commitment (VQ-VAE)
  + w_feat * feature matching                          a perceptual loss: LPIPS needs VGG weights, which
                                                       are not here, so the distances are taken in the
                                                       conv features of genlab's own evaluator net
  + w_adv * (-D(x_hat))                               the patch discriminator's hinge loss (from step
                                                       train.adversarial_start on)
and the discriminator the hinge loss max(0, 1 - D(x)) + max(0, 1 + D(x_hat)) over its 7x7 patches.
The codebook is not in the gradient: the quantiser moves it by EMA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlab.evaluation.classifier import ImageClassifier


class EvaluatorFeatures(nn.Module):
    """The frozen evaluator's activations after each conv block's ReLU (28x28, 14x14, 7x7 maps), each
    unit-normalised over channels as LPIPS does, so that every block weighs alike."""

    def __init__(self, evaluator: ImageClassifier):
        super().__init__()
        self.layers = evaluator.conv.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        x = images
        for layer in self.layers:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                maps.append(F.normalize(x, dim=1, eps=1e-6))  # (B, C_i, H_i, W_i)
        return maps


def feature_matching(features: EvaluatorFeatures, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Sum over the evaluator's blocks of the mean squared distance between normalised features."""
    with torch.no_grad():
        targets = features(real)
    return sum((f - t).pow(2).sum(1).mean() for f, t in zip(features(fake), targets))


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


def psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-image peak signal-to-noise ratio in dB of images (B, ...) in [0, 1]: 10 log10(1 / MSE)."""
    mse = (fake - real).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)


def code_usage(ids: torch.Tensor, codebook_size: int) -> dict[str, float | list[int]]:
    """How a set of token ids (any shape) spreads over the codebook: the share of codes used at least once,
    the perplexity exp(H) of the id histogram (K when all are equally used, 1 when one is), the counts."""
    counts = torch.bincount(ids.flatten().cpu(), minlength=codebook_size)  # (K,)
    p = counts.double() / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {
        "codebook_use": float((counts > 0).double().mean()),
        "perplexity": float(entropy.exp()),
        "counts": counts.tolist(),
    }
