"""Colour emoji as a 32x32 RGB image set, named by their Unicode names: a data set whose tokens must
carry colour (a red apple and a green apple differ only in it).

Source: Debian's `fonts-noto-color-emoji` (NotoColorEmoji.ttf). Its glyphs are colour bitmaps of one
size, which FreeType (through Pillow) loads only at size 109 with `embedded_color=True`; each glyph is
drawn there, cropped to its ink, centred on a white square and downscaled to 32x32. The emoji are the
font's single code points of Unicode category So ("symbol, other") whose name has at most MAX_WORDS
words; skin-tone modifiers and the regional-indicator letters of flags are left out (they are parts of
sequences, not pictures). Every TEST_EVERY-th emoji in code-point order is held out (the test split), so
neighbours such as the faces fall on both sides. Each emoji is its own class, named by
`unicodedata.name` ("RED APPLE"): the caption the token transformer reads. Rendering takes seconds, so
the images and code points are kept in genlab's data cache, keyed by the font file's size and time.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genlab.data.images import ImageData, cache_root
from genlab.errors import GenlabError
from genlab.io.files import atomic_write_npz
from genlab.io.validate import environ

EMOJI = "emoji"  # the data set's name
FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
PACKAGE = "fonts-noto-color-emoji"
BITMAP_SIZE = 109  # the font's one bitmap size: FreeType refuses any other for it
SIDE = 32
MAX_WORDS = 8  # longer names (a few, like "CLOCKWISE RIGHTWARDS AND LEFTWARDS OPEN CIRCLE ARROWS") are left out
TEST_EVERY = 10
LEFT_OUT = ("EMOJI MODIFIER", "REGIONAL INDICATOR")


def font_path() -> Path:
    """The colour emoji font (GENLAB_EMOJI_FONT overrides); missing is one line naming the package."""
    path = Path(environ("GENLAB_EMOJI_FONT") or FONT)
    if not path.is_file():
        raise GenlabError(f"emoji need the colour font {path} (Debian: sudo apt-get install {PACKAGE})")
    return path


def emoji_code_points(path: Path) -> list[int]:
    """The font's pictures, in code-point order: single code points of category So with a short name."""
    from fontTools.ttLib import TTFont  # matplotlib's dependency; only the emoji set reads a font's cmap

    with TTFont(path, lazy=True) as font:
        cmap = font.getBestCmap()
    chosen = []
    for cp in sorted(cmap):
        name = unicodedata.name(chr(cp), "")
        if unicodedata.category(chr(cp)) == "So" and name and not name.startswith(LEFT_OUT):
            if len(name.split()) <= MAX_WORDS:
                chosen.append(cp)
    return chosen


def render(char: str, font: ImageFont.FreeTypeFont) -> np.ndarray:
    """One emoji -> (SIDE, SIDE, 3) uint8: drawn at the bitmap size, cropped to its ink, centred on a
    white square with a small margin, downscaled with a Lanczos filter."""
    canvas = Image.new("RGBA", (2 * BITMAP_SIZE, 2 * BITMAP_SIZE), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((BITMAP_SIZE // 4, BITMAP_SIZE // 4), char, font=font, embedded_color=True)
    box = canvas.getbbox()  # the ink (alpha > 0)
    if box is None:
        raise GenlabError(f"{font.path}: U+{ord(char):04X} draws nothing")
    glyph = canvas.crop(box)
    side = int(max(glyph.size) * 1.08)  # a 4 % margin each side
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    return np.asarray(square.convert("RGB").resize((SIDE, SIDE), Image.LANCZOS))


def rendered(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The font's emoji code points (N,) and images (N, 32, 32, 3) uint8, from the cache or drawn now."""
    stat = path.stat()
    cached = cache_root() / "emoji" / f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}-{SIDE}.npz"
    if cached.is_file():
        with np.load(cached) as saved:
            return saved["points"], saved["images"]
    try:
        font = ImageFont.truetype(str(path), BITMAP_SIZE)
        points = np.array(emoji_code_points(path))
    except OSError as exc:
        raise GenlabError(f"{path}: cannot read the emoji font ({exc})") from None
    images = np.stack([render(chr(cp), font) for cp in points])
    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_npz(cached, points=points, images=images)
    return points, images


def load_emoji() -> ImageData:
    """The emoji set: images (N, 32, 32, 3) uint8, label i = the i-th emoji, class names their Unicode names."""
    path = font_path()
    points, images = rendered(path)
    labels = np.arange(len(points), dtype=np.int64)
    names = tuple(unicodedata.name(chr(int(cp))) for cp in points)
    test = labels % TEST_EVERY == TEST_EVERY - 1
    return ImageData(
        EMOJI,
        f"font {path} ({PACKAGE}), {len(points)} emoji at {SIDE}x{SIDE}",
        names,
        images[~test],
        labels[~test],
        images[test],
        labels[test],
    )
