"""What `generate` translates, read and checked: a line of text (rendered in the source font) or a glyph
image file (--input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from genlab.data.glyphs import glyph_or_error
from genlab.errors import GenlabError
from genlab.io.validate import check_text

MAX_TEXT = 200  # characters in one line


def text_glyphs(text: str, source: str, size: int) -> torch.Tensor:
    """Each character of `text` in the source font as ink (N, 1, S, S); a space is a blank cell."""
    check_text("--text", text)
    if not text.strip():
        raise GenlabError("--text is empty: give the characters to draw")
    if len(text) > MAX_TEXT:
        raise GenlabError(f"--text has {len(text)} characters; at most {MAX_TEXT} in one line")
    blank = np.zeros((size, size), np.uint8)
    cells = [blank if c.isspace() else glyph_or_error(source, c, size) for c in text]
    return torch.from_numpy(np.stack(cells)).float().div_(255).unsqueeze(1)


def read_glyph(path: str | Path, size: int) -> torch.Tensor:
    """A square image of one glyph, dark ink on light paper (as the source font renders it at `size` pixels,
    centred in its cell by the font's metrics) -> ink (1, 1, S, S), resized to S x S."""
    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"--input {path}: no such file")
    try:
        with Image.open(path) as image:
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError) as exc:
        raise GenlabError(f"--input {path}: not an image file ({exc})") from None
    if grey.width != grey.height:
        raise GenlabError(f"--input {path}: {grey.width}x{grey.height} pixels; a glyph image must be square")
    pixels = np.asarray(grey.resize((size, size), Image.LANCZOS), dtype=np.float32)
    return torch.from_numpy(1 - pixels / 255)[None, None]
