"""Image grids and files: (N, C, H, W) tensors in [0, 1] (C = 1 grey, 3 colour) <-> PNG grids, .npy arrays
and PIL images."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genlab.errors import GenlabError
from genlab.io.files import atomic_write, atomic_write_bytes
from genlab.io.validate import output_file

IMAGE_SUFFIXES = (".png", ".npy")
MAX_GRID_IMAGES = 10_000  # a 100 x 100 grid; more is unreadable and a very large PNG


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> uint8 (rows*(H+pad)+pad, cols*(W+pad)+pad) on a white-ish frame, with a
    last axis of 3 for colour images (C = 3)."""
    n, c, h, w = images.shape
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, *(() if c == 1 else (c,))), 255, dtype=np.uint8)
    pixels = (images.detach().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)  # (N, C, H, W)
    pixels = pixels[:, 0] if c == 1 else pixels.transpose(0, 2, 3, 1)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = pixels[i]
    return grid


def grid_image(grid: np.ndarray, scale: int = 2) -> Image.Image:
    image = Image.fromarray(grid)
    if scale > 1:
        image = image.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    return image


def png_bytes(grid: np.ndarray, scale: int = 2) -> bytes:
    buffer = io.BytesIO()
    grid_image(grid, scale).save(buffer, format="PNG")
    return buffer.getvalue()


def check_image_path(out: Path) -> Path:
    """An output path genlab can write images to, checked before any sampling starts."""
    out = Path(out)
    if out.suffix not in IMAGE_SUFFIXES:
        raise GenlabError(f"--out {out} must end in .png or .npy")
    return output_file(out)  # a link's target, never a folder or a device


def image_array(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] -> (N, H, W) float32 for one channel, (N, H, W, 3) for colour."""
    images = images.detach()
    images = images[:, 0] if images.size(1) == 1 else images.permute(0, 2, 3, 1)
    return images.float().cpu().clamp(0, 1).numpy()  # one copy, made by clamp


@dataclass
class GeneratedImages:
    """What an image run's `generate` returns: images (N, C, H, W) in [0, 1] and the labels asked for."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    nrow: int | None = None  # grid columns: the number of classes for a conditional model

    def __len__(self) -> int:
        return len(self.images)

    def numpy(self) -> np.ndarray:
        """(N, H, W) float32 in [0, 1], (N, H, W, 3) for colour images."""
        return image_array(self.images)

    def grid(self) -> Image.Image:
        """All images as one PIL grid."""
        return grid_image(make_grid(self.images, self.nrow))

    def save(self, out: str | Path) -> Path:
        """A PNG grid (.png) or the (N, H, W) float32 array (.npy), written atomically."""
        out = check_image_path(Path(out))
        if out.suffix == ".png":
            if len(self) > MAX_GRID_IMAGES:
                raise GenlabError(
                    f"a PNG grid holds at most {MAX_GRID_IMAGES:,} images, not {len(self):,}: write FILE.npy instead"
                )
            return atomic_write_bytes(out, png_bytes(make_grid(self.images, self.nrow)))
        array = self.numpy()

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:  # straight to the file: no second copy in memory
                np.save(fh, array)

        return atomic_write(out, write)
