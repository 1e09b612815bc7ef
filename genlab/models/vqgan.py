"""A small VQGAN for small square images (28x28 greyscale, 32x32 colour): conv encoder -> vector quantiser
-> conv decoder, and the patch discriminator that judges its reconstructions (Esser et al. 2021, "Taming
Transformers").

An image (B, C, S, S) in [0, 1] becomes a (S/4)x(S/4) grid of codebook ids (B, (S/4)^2) — 7x7 = 49 for
28x28, 8x8 = 64 for 32x32: the tokens a transformer writes one by one (genlab/tasks/vq_dalle). The
quantiser is `vector-quantize-pytorch`'s `VectorQuantize` (the field's library), kept alive by
exponential-moving-average code updates, k-means initialisation on the first batch and dead-code restarts
(a code whose EMA usage falls below `dead_code_threshold` is replaced by an encoder output of the current
batch), with the plain straight-through gradient estimator (VQ-VAE, van den
Oord et al. 2017): the decoder's gradient reaches the encoder as if quantisation were the identity.

The model maps images to codes and back; its losses (reconstruction, commitment, feature matching, patch
GAN) live in genlab/tasks/vqgan/process.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError


@dataclass
class VQGANConfig:
    width: int = 64  # channels of the 14x14 and 7x7 feature maps (the 28x28 stem has width // 2); GroupNorm of 8
    code_dim: int = 32  # length of a code vector
    codebook_size: int = 256  # K: token ids 0..K-1
    ema_decay: float = 0.9  # codebook EMA: lower follows the encoder faster
    dead_code_threshold: float = 2.0  # restart a code whose EMA count of uses per batch falls below this
    commitment: float = 0.25  # beta: weight of |z - sg(q)|^2, which keeps encoder outputs near their codes
    channels: int = 1  # 1 greyscale, 3 colour
    image_size: int = 28  # S: square images, a multiple of 4 (two stride-2 stages)

    def __post_init__(self) -> None:
        if self.channels not in (1, 3) or self.image_size < 8 or self.image_size % 4:
            raise ValueError("model.channels must be 1 or 3, model.image_size a multiple of 4 from 8 up")
        if self.width < 8 or self.width % 8 or self.code_dim < 1 or self.codebook_size < 2:
            raise ValueError("model.width must be a positive multiple of 8, model.code_dim >= 1, codebook_size >= 2")
        if not 0 < self.ema_decay < 1 or self.dead_code_threshold < 0 or self.commitment < 0:
            raise ValueError("model.ema_decay must be in (0, 1), dead_code_threshold and commitment >= 0")

    @property
    def grid(self) -> int:
        return self.image_size // 4  # two stride-2 stages

    @property
    def tokens(self) -> int:
        return self.grid * self.grid


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Encoder(nn.Module):
    """(B, C, S, S) in [0, 1] -> (B, code_dim, S/4, S/4)."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        w = cfg.width
        self.net = nn.Sequential(
            nn.Conv2d(cfg.channels, w // 2, 3, padding=1),  # SxS (28x28)
            nn.SiLU(),
            nn.Conv2d(w // 2, w, 4, stride=2, padding=1),  # S/2 (14x14)
            ResBlock(w),
            nn.Conv2d(w, w, 4, stride=2, padding=1),  # S/4 (7x7)
            ResBlock(w),
            nn.GroupNorm(8, w),
            nn.SiLU(),
            nn.Conv2d(w, cfg.code_dim, 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2 - 1)  # zero-centred pixels in


class Decoder(nn.Module):
    """(B, code_dim, S/4, S/4) -> pixel logits (B, C, S, S); sigmoid gives [0, 1]."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        w = cfg.width
        self.net = nn.Sequential(
            nn.Conv2d(cfg.code_dim, w, 3, padding=1),  # 7x7
            ResBlock(w),
            nn.ConvTranspose2d(w, w, 4, stride=2, padding=1),  # 14x14
            ResBlock(w),
            nn.ConvTranspose2d(w, w // 2, 4, stride=2, padding=1),  # 28x28
            nn.SiLU(),
            nn.Conv2d(w // 2, cfg.channels, 3, padding=1),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.net(codes)


class VQGAN(nn.Module):
    """Encoder, quantiser, decoder. `forward` is the training pass; `encode`/`decode` are the tokenizer."""

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        # Imported here, not at the top: the library's import (einx registering its backends) takes about
        # 2 s, which every genlab command would pay through the task registry; only a VQGAN needs it.
        from vector_quantize_pytorch import VectorQuantize

        self.quantizer = VectorQuantize(
            dim=cfg.code_dim,
            codebook_size=cfg.codebook_size,
            decay=cfg.ema_decay,
            kmeans_init=True,  # the codebook starts as k-means centres of the first batch's encoder outputs
            threshold_ema_dead_code=cfg.dead_code_threshold,
            commitment_weight=cfg.commitment,
            rotation_trick=False,  # the plain straight-through estimator
            sync_codebook=False,  # DDP: each rank's EMA sees its own batch (genlab trains on one process here)
        )
        self.decoder = Decoder(cfg)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, D, g, g) -> quantised (B, D, g, g) with straight-through gradients, ids (B, g*g), the
        commitment loss (scalar, already weighted by beta). In training mode the codebook takes an EMA step."""
        B, D, H, W = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(B, H * W, D)  # (B, g*g, D), row-major over the grid
        q, ids, commit = self.quantizer(flat)
        return q.reshape(B, H, W, D).permute(0, 3, 1, 2), ids, commit.sum()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images (B, C, S, S) -> reconstruction logits (B, C, S, S), ids (B, g*g), commitment loss."""
        q, ids, commit = self.quantize(self.encoder(images))
        return self.decoder(q), ids, commit

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, S, S) in [0, 1] -> token ids (B, g*g): each position's nearest code, the codebook
        left as it is (the quantiser runs in eval mode, whatever the model's mode)."""
        was_training = self.quantizer.training
        self.quantizer.eval()
        try:
            return self.quantize(self.encoder(images))[1]
        finally:
            self.quantizer.train(was_training)

    def codes(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, g*g) -> code vectors (B, D, g, g): a plain embedding lookup, which ONNX exports."""
        g = self.config.grid
        q = F.embedding(ids, self.quantizer.codebook)  # (B, g*g, D)
        return q.view(ids.size(0), g, g, -1).permute(0, 3, 1, 2)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, g*g) in 0..K-1 -> images (B, C, S, S) in [0, 1]."""
        if ids.dim() != 2 or ids.size(1) != self.config.tokens:
            raise GenlabError(f"token ids must be (B, {self.config.tokens}), got {tuple(ids.shape)}")
        return torch.sigmoid(self.decoder(self.codes(ids)))


class TokenDecoder(nn.Module):
    """A VQGAN's decoder as token ids (B, g*g) -> images (B, C, S, S): the graph `genlab export` writes."""

    def __init__(self, model: VQGAN):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model.decoder(self.model.codes(ids)))


class PatchDiscriminator(nn.Module):
    """(B, C, S, S) in [0, 1] -> real/fake logits per overlapping patch (B, 1, S/4, S/4) (pix2pix's PatchGAN,
    scaled to 28x28: each logit sees a 10x10 receptive field, so it judges texture and edges, not layout)."""

    def __init__(self, width: int = 32, channels: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1),  # S/2
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # S/4
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, padding=1),  # S/4 x S/4 logits
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2 - 1)
