"""Image grids and files: (N, 1, 28, 28) tensors in [0, 1] <-> PNG grids and .npy arrays."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from genlab.errors import GenlabError
from genlab.tracking import atomic_write_bytes


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


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, 1, H, W) in [0, 1] -> uint8 (rows*(H+pad)+pad, cols*(W+pad)+pad) on a white-ish frame."""
    n, _, h, w = images.shape
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 255, dtype=np.uint8)
    pixels = (images.detach().clamp(0, 1).cpu().numpy()[:, 0] * 255).round().astype(np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = pixels[i]
    return grid


def png_bytes(grid: np.ndarray, scale: int = 2) -> bytes:
    image = Image.fromarray(grid)
    if scale > 1:
        image = image.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_images(images: torch.Tensor, out: Path, nrow: int | None = None) -> None:
    """Write a PNG grid (.png) or an (N, 28, 28) float32 array in [0, 1] (.npy), atomically."""
    if out.suffix == ".png":
        atomic_write_bytes(out, png_bytes(make_grid(images, nrow)))
    elif out.suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, images.detach().clamp(0, 1).cpu().numpy()[:, 0].astype(np.float32))
        atomic_write_bytes(out, buffer.getvalue())
    else:
        raise GenlabError(f"output {out} must end in .png or .npy")
