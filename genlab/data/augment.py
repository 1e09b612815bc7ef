"""Differentiable image augmentation: random translations (DiffAugment for GANs, and the evaluator's training)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def translate(images: torch.Tensor, shifts: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Move image i by shifts[i] = (dy, dx) in [0, 2*max_shift] - max_shift pixels, filling with black.

    Differentiable in `images` (an index gather), so it can sit between G and D (DiffAugment).
    images: (B, 1, H, W); shifts: (B, 2) integers.
    """
    b, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)  # (B, 1, H + 2s, W + 2s)
    rows = (torch.arange(h, device=images.device) + shifts[:, :1])[:, :, None]  # (B, H, 1)
    cols = (torch.arange(w, device=images.device) + shifts[:, 1:])[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=images.device)[:, None, None]
    return padded[batch, 0, rows, cols].unsqueeze(1)  # (B, 1, H, W)


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to max_shift pixels in x and y (shifts drawn from `generator`)."""
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, len(images), 1), generator=generator)  # (B, 1) each
    return translate(images, torch.cat([dy, dx], dim=1).to(images.device), max_shift)


def random_affine(images: torch.Tensor, u: torch.Tensor, max_shift: float, max_zoom: float) -> torch.Tensor:
    """Each (B, C, S, S) image (all its channels alike) shifted by up to max_shift pixels in x and y and scaled
    by 1 +- max_zoom about its centre, paper (0) outside; u: (B, 3) uniform draws in [0, 1) (zoom, dx, dy)."""
    zoom = 1 + max_zoom * (2 * u[:, 0] - 1)  # (B,)
    theta = torch.zeros(len(images), 2, 3, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom
    theta[:, :, 2] = max_shift * 2 / images.shape[-1] * (2 * u[:, 1:] - 1)  # in grid units (the side is 2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)  # (B, C, S, S)
