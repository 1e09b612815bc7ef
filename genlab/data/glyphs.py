"""Chinese glyphs rendered from the Debian CJK fonts: the data set of style transfer (docs/style-transfer.md).

Each glyph is a (size, size) greyscale image of ink in [0, 1] (0 = paper), drawn with Pillow at one em
size for every font and placed by the font's own metrics — the advance width centred horizontally, the
font's ascent + descent box centred vertically — never by the glyph's bounding box, so a glyph's position
and weight inside its cell are part of the font's style, as a typesetter would see them.

Characters come in the frequency order of genlab/data/glyph_chars.txt (GB2312 level 1). The split is by
character and by the character's place in that order alone (every `test_every`-th is held out), so a test
character is a test character whatever fonts a run asks for: it is never seen in any font in training.
Rendered arrays are cached in $GENLAB_DATA_DIR/glyphs/.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genlab.data.images import cache_root
from genlab.errors import GenlabError
from genlab.io.files import atomic_write_bytes

CHARS_FILE = Path(__file__).with_name("glyph_chars.txt")
EM_SHARE = 0.84  # the em square's side as a share of the cell: room for fonts whose ascent+descent exceed 1 em
MISSING = "\U0010fffd"  # a noncharacter no font maps: what it renders is the font's .notdef glyph


@dataclass(frozen=True)
class Font:
    path: str
    index: int  # the face inside a .ttc collection
    package: str  # the Debian package that installs it
    style: str  # what it looks like, for the docs and --help
    licence: str


FONTS = {
    "wqy-microhei": Font("wqy/wqy-microhei.ttc", 0, "fonts-wqy-microhei", "sans (hei)", "Apache-2.0 or GPL-3+"),
    "wqy-zenhei": Font("wqy/wqy-zenhei.ttc", 0, "fonts-wqy-zenhei", "sans (hei)", "GPL-2 with font exception"),
    "arphic-ukai": Font("arphic/ukai.ttc", 0, "fonts-arphic-ukai", "brush (kai)", "Arphic Public License"),
    "arphic-uming": Font("arphic/uming.ttc", 0, "fonts-arphic-uming", "serif (ming/song)", "Arphic Public License"),
    "cwtex-kai": Font("cwtex/cwkai.ttf", 0, "fonts-cwtex-kai", "brush (kai)", "GPL-2+ with font exception"),
    "cwtex-ming": Font("cwtex/cwming.ttf", 0, "fonts-cwtex-ming", "serif (ming/song)", "GPL-2+ with font exception"),
    "cwtex-fs": Font("cwtex/cwfs.ttf", 0, "fonts-cwtex-fs", "imitation song (fangsong)", "GPL-2+ with font exception"),
    "cwtex-heib": Font("cwtex/cwheib.ttf", 0, "fonts-cwtex-heib", "bold sans (hei)", "GPL-2+ with font exception"),
    "cwtex-yen": Font("cwtex/cwyen.ttf", 0, "fonts-cwtex-yen", "rounded (yuan)", "GPL-2+ with font exception"),
    "lxgw-wenkai": Font("lxgw-wenkai/LXGWWenKai-Regular.ttf", 0, "fonts-lxgw-wenkai", "brush (kai)", "OFL-1.1"),
}
FONT_DIR = Path("/usr/share/fonts/truetype")


def check_font(name: str) -> Font:
    if name not in FONTS:
        raise GenlabError(f"unknown font '{name}' (known: {', '.join(FONTS)})")
    font = FONTS[name]
    if not (FONT_DIR / font.path).is_file():
        raise GenlabError(
            f"font '{name}' needs the Debian package {font.package} (sudo apt-get install {font.package})"
        )
    return font


@cache
def char_order() -> str:
    """The 3,755 GB2312 level-1 characters, most frequent first (see the file's first line)."""
    lines = CHARS_FILE.read_text(encoding="utf-8").splitlines()
    return "".join(line for line in lines if not line.startswith("#"))


@cache
def gb2312_level2() -> str:
    """The 3,008 GB2312 level-2 characters (rarer, ordered by radical then stroke count), from Python's codec:
    rows 0xD8-0xF7 of the code table. None is a held-out character: the split counts over level 1 only."""
    cells = (bytes([row, cell]) for row in range(0xD8, 0xF8) for cell in range(0xA1, 0xFF))
    return "".join(code.decode("gb2312") for code in cells if _decodes(code))


def _decodes(code: bytes) -> bool:
    try:
        code.decode("gb2312")
    except UnicodeDecodeError:  # the unassigned cells at the end of row 0xD7 and in row 0xF7
        return False
    return True


@cache
def unified_ideographs() -> str:
    """The CJK Unified Ideographs (U+4E00-U+9FFF) outside GB2312: mostly traditional and rare characters."""
    gb2312 = set(char_order() + gb2312_level2())
    return "".join(c for c in map(chr, range(0x4E00, 0xA000)) if c not in gb2312)


# What data.train_chars adds after level 1: nothing, GB2312's level 2, or that and the other unified ideographs.
BEYOND_LEVEL1 = {"all": (), "gb2312": (gb2312_level2,), "cjk": (gb2312_level2, unified_ideographs)}


def training_order(chars: str = "all") -> str:
    """The characters `training_glyphs` indexes for data.train_chars `chars`: level 1 by frequency, then the
    characters BEYOND_LEVEL1 names."""
    return char_order() + "".join(part() for part in BEYOND_LEVEL1[chars])


def variants_of(held_out: set[str], candidates: str) -> np.ndarray:
    """(len(candidates),) bool: the candidates that OpenCC's traditional-to-simplified table turns into a held-out
    character (優 -> 优, 摺 -> 折): another code point, but the same character to a reader, so never trained."""
    try:
        import opencc
    except ImportError:
        raise GenlabError("characters beyond GB2312 level 1 need PyPI opencc (pip install opencc==1.4.2)") from None
    simplify = opencc.OpenCC("t2s").convert
    return np.array([simplify(c) in held_out for c in candidates], dtype=bool)


@cache
def _face(name: str, size: int) -> ImageFont.FreeTypeFont:
    font = check_font(name)
    return ImageFont.truetype(str(FONT_DIR / font.path), round(size * EM_SHARE), index=font.index)


def _draw(face: ImageFont.FreeTypeFont, char: str, size: int) -> np.ndarray:
    """Ink (size, size) uint8 0..255 of one character, placed by the font's metrics."""
    ascent, descent = face.getmetrics()  # pixels at this em size: the font's line box
    x = (size - face.getlength(char)) / 2  # the advance width centred
    baseline = (size - (ascent + descent)) / 2 + ascent  # the line box centred
    image = Image.new("L", (size, size), 0)
    ImageDraw.Draw(image).text((x, baseline), char, fill=255, font=face, anchor="ls")
    return np.asarray(image)


def render_glyph(font: str, char: str, size: int = 64) -> np.ndarray | None:
    """The glyph of `char` in `font` as ink (size, size) uint8, or None where the font lacks it (its
    .notdef box, or nothing at all, is what Pillow would draw)."""
    ink = _draw(_face(font, size), char, size)
    return None if not ink.any() or np.array_equal(ink, _notdef(font, size)) else ink


@cache
def _notdef(font: str, size: int) -> np.ndarray:
    return _draw(_face(font, size), MISSING, size)


def glyph_or_error(font: str, char: str, size: int) -> np.ndarray:
    ink = render_glyph(font, char, size)
    if ink is None:
        raise GenlabError(f"font '{font}' has no glyph for {char!r} (U+{ord(char):04X})")
    return ink


def rendered(font: str, count: int, size: int, chars: str = "all") -> np.ndarray:
    """The first `count` characters of training_order(chars) in `font`: (count, size, size) uint8 ink, all
    zero where the font lacks the character. Cached in $GENLAB_DATA_DIR/glyphs/<font>-<size>px-<count>.npy
    (a count names its characters: level 1 ends at 3,755, level 2 at 6,763)."""
    path = cache_root() / "glyphs" / f"{font}-{size}px-{count}.npy"
    check_font(font)
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (count, size, size):
                return cached
        except (OSError, ValueError):  # a damaged cache is rendered again
            pass
    blank = np.zeros((size, size), np.uint8)
    out = np.stack([_or(render_glyph(font, c, size), blank) for c in training_order(chars)[:count]])
    buffer = io.BytesIO()
    np.save(buffer, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return out


def _or(ink: np.ndarray | None, blank: np.ndarray) -> np.ndarray:
    return blank if ink is None else ink


@dataclass
class GlyphSet:
    """Glyphs of several fonts over one character list: ink (F, C, size, size) float32 in [0, 1]."""

    fonts: list[str]
    chars: str  # C characters, in frequency order, every font has each
    ink: np.ndarray
    is_test: np.ndarray  # (C,) bool: held out of every font's training

    def split(self, part: str) -> np.ndarray:
        """Character indices of the `part` ("train" or "test"), in frequency order."""
        if part not in ("train", "test"):
            raise GenlabError(f"unknown split '{part}' (choose train or test)")
        return np.flatnonzero(self.is_test if part == "test" else ~self.is_test)

    def index(self, font: str) -> int:
        if font not in self.fonts:
            raise GenlabError(f"font '{font}' is not among this data's fonts ({', '.join(self.fonts)})")
        return self.fonts.index(font)


def load_glyphs(fonts: list[str], num_chars: int, size: int = 64, test_every: int = 8) -> GlyphSet:
    """The first `num_chars` characters of the frequency order that every one of `fonts` has, in each font.
    Character i of the order (0-based, counted over the whole order) is a test character when
    i % test_every == 0, whatever the fonts."""
    for font in fonts:
        check_font(font)
    order = char_order()
    # Twice num_chars is almost always enough (the fonts here miss at most a third of level 1, fewer of its
    # frequent characters); else the whole order.
    for scan in sorted({min(len(order), 2 * num_chars + 16), len(order)}):
        arrays = np.stack([rendered(font, scan, size) for font in fonts])  # (F, scan, size, size)
        present = arrays.reshape(len(fonts), scan, -1).any(axis=2).all(axis=0)  # (scan,)
        keep = np.flatnonzero(present)[:num_chars]
        if len(keep) == num_chars:
            break
    if len(keep) < num_chars:
        raise GenlabError(f"the fonts {', '.join(fonts)} share only {len(keep)} characters, not {num_chars}")
    ink = arrays[:, keep].astype(np.float32) / 255
    return GlyphSet(list(fonts), "".join(order[i] for i in keep), ink, keep % test_every == 0)


def training_glyphs(
    source: str, targets: list[str], size: int = 64, test_every: int = 8, chars: str = "all"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every training character of training_order(chars) that the source and a target font both have, per target
    — not only the characters all fonts share. Level-1 character i is never among them when i % test_every == 0
    (the held-out characters of load_glyphs, whatever its fonts), nor is any character beyond level 1 that is a
    variant of one of those (variants_of).

    Returns the source's ink (N, size, size) uint8 over all N characters of training_order(chars), the
    targets' ink (T, N, size, size) uint8, and the (P, 2) pairs (target slot, character index) to train on,
    in slot then order."""
    order, level1 = training_order(chars), char_order()
    n = len(order)
    source_ink = rendered(source, n, size, chars)
    target_ink = np.stack([rendered(font, n, size, chars) for font in targets])
    has = target_ink.reshape(len(targets), n, -1).any(2) & source_ink.reshape(1, n, -1).any(2)  # (T, N)
    has[:, : len(level1) : test_every] = False  # the held-out characters, in every font
    if n > len(level1):
        has[:, len(level1) :] &= ~variants_of(set(level1[::test_every]), order[len(level1) :])
    return source_ink, target_ink, np.argwhere(has)
