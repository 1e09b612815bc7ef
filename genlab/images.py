"""Image grids and files: (N, 1, 28, 28) tensors in [0, 1] <-> PNG grids and .npy arrays."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genlab.errors import GenlabError
from genlab.tracking import atomic_write_bytes


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
