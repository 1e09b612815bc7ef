"""Image-to-image inputs read from files, checked: the start image (--init), the mask (--mask) and
the low-resolution image to super-resolve (--low-res)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from genlab.errors import GenlabError
from genlab.tasks.flow.pipeline import IMAGE_SHAPE


def open_image(path: str | Path, option: str) -> Image.Image:
    """The image in file `path`, read whole; a missing or unreadable file is one line naming `option`."""
    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"{option} {path}: no such file")
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise GenlabError(f"{option} {path}: not an image file ({exc})") from None
    return image


def read_image(path: str | Path, option: str, sides: tuple[int, ...] = (IMAGE_SHAPE[1],)) -> torch.Tensor:
    """A square greyscale image file with one of the allowed `sides` -> (1, 1, side, side) in [0, 1];
    anything else is one line of error."""
    image = open_image(path, option)
    if image.mode not in ("L", "1", "I;16", "I", "F"):
        raise GenlabError(
            f"{option} {path}: a {image.mode} image with {len(image.getbands())} channels; "
            "the model works on 1-channel (greyscale) images"
        )
    width, height = image.size
    if width != height or width not in sides:
        wanted = " or ".join(f"{s}x{s}" for s in sides)
        raise GenlabError(f"{option} {path}: {width}x{height} pixels; it must be {wanted}")
    pixels = np.asarray(image.convert("F"), dtype=np.float32)
    scale = 65535.0 if image.mode in ("I;16", "I") else 1.0 if image.mode == "F" else 255.0
    return torch.from_numpy(pixels / scale).clamp(0, 1)[None, None]  # (1, 1, side, side)


def read_mask(path: str | Path) -> torch.Tensor:
    """A mask image -> (1, 1, 28, 28) of 1 where the model draws new content (light pixels), 0 where the
    --init image is kept (dark pixels)."""
    return (read_image(path, "--mask") > 0.5).float()


def read_low_res(path: str | Path) -> torch.Tensor:
    """A 14x14 or 7x7 greyscale image to super-resolve to 28x28 -> (1, 1, side, side) in [0, 1]."""
    side = IMAGE_SHAPE[1]
    return read_image(path, "--low-res", (side // 2, side // 4))
