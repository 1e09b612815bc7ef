"""The data sets genlab makes from other material on the machine (fonts, music21's corpus, Asterisk's voice, MNIST
itself), for `genlab data list`: what each is, the recipes that train on it, and whether this machine has its source.
The check is only whether the source files are there: it never renders, parses or synthesizes a set, so listing
stays fast. (Image sets, text corpora and the spoken digits are listed with their sizes by the CLI itself.)"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genlab.data import emoji, glyphs, speech
from genlab.data.images import idx_available
from genlab.errors import GenlabError


@dataclass(frozen=True)
class DerivedSet:
    name: str
    what: str
    recipes: str
    missing: Callable[[], str | None]  # () -> None when the source is here, else what is missing and how to get it


def _music21_folder(*folders: str) -> str | None:
    spec = importlib.util.find_spec("music21")  # find, not import: music21 takes 0.3 s to import
    if spec is None or spec.origin is None:
        return "PyPI music21 is not installed"
    corpus = Path(spec.origin).parent / "corpus"
    absent = [f for f in folders if not (corpus / f).is_dir()]
    return f"music21's corpus lacks {', '.join(absent)}" if absent else None


def _file(path: Path, package: str) -> str | None:
    return None if path.exists() else f"{path} is missing (Debian: sudo apt-get install {package})"


def _refused(check: Callable[[], object]) -> str | None:
    """The one-line reason `check` refuses (its GenlabError), or None."""
    try:
        check()
    except GenlabError as exc:
        return str(exc)
    return None


def _fonts() -> str | None:
    present = [name for name in glyphs.FONTS if _refused(lambda name=name: glyphs.check_font(name)) is None]
    if not present:
        return "no CJK font is installed (Debian: " + " ".join(f.package for f in glyphs.FONTS.values()) + ")"
    absent = len(glyphs.FONTS) - len(present)
    return f"{absent} of {len(glyphs.FONTS)} fonts missing (recipes naming them refuse to run)" if absent else None


def _voices() -> str | None:
    for path, package in ((speech.VOICE_DIR, speech.PACKAGE), (speech.TRANSCRIPTS, speech.PACKAGE)):
        if (why := _file(path, package)) is not None:
            return why
    absent = [tool for tool in speech.ENGINES if shutil.which(tool) is None]
    return f"{', '.join(absent)} missing (Debian: sudo apt-get install {' '.join(absent)})" if absent else None


def _idx(name: str) -> Callable[[], str | None]:
    return lambda: None if idx_available(name) else f"needs {name} (above), which is not on this machine"


DERIVED_SETS = (
    DerivedSet(
        "moving-mnist",
        "two MNIST digits bouncing in 64x64, 20 frames, made on the fly",
        "moving-mnist-video",
        _idx("mnist"),
    ),
    DerivedSet(
        "fashion-edges", "Sobel edge maps of Fashion-MNIST items -> the items", "fashion-edges", _idx("fashion-mnist")
    ),
    DerivedSet(
        "emoji",
        "colour emoji at 32x32 RGB, captioned by their Unicode names",
        "vqgan-emoji, vq-dalle-emoji",
        lambda: _refused(emoji.font_path),
    ),
    DerivedSet(
        "glyphs",
        f"Chinese glyphs of GB2312 level 1 in {len(glyphs.FONTS)} Debian CJK fonts",
        "pix2pix-kai, zi2zi-fonts, zi2zi-fewshot",
        _fonts,
    ),
    DerivedSet(
        "allison",
        "Asterisk's Allison prompts (8 kHz) + espeak-ng/flite saying the same text",
        "tts-allison, vc-flite-to-allison, vc-espeak-to-flite",
        _voices,
    ),
    DerivedSet(
        "bach-chorales",
        "Bach's four-part chorales (music21 corpus, MusicXML)",
        "bach-chorales",
        lambda: _music21_folder("bach"),
    ),
    DerivedSet(
        "chat",
        "instructions from the Bibles and fortunes + chatterbot-corpus small talk",
        "chat-sft",
        lambda: None if importlib.util.find_spec("chatterbot_corpus") else "PyPI chatterbot-corpus is not installed",
    ),
    DerivedSet(
        "folk",
        "O'Neill's 1850 and Ryan's Mammoth Collection (music21 corpus, ABC)",
        "folk-tunes",
        lambda: _music21_folder("oneills1850", "ryansMammoth"),
    ),
)
