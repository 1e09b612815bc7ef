"""Every image data set by name: the IDX sets (MNIST, Fashion-MNIST: genlab/data/images.py) and the colour
emoji drawn from a font (genlab/data/emoji.py)."""

from __future__ import annotations

from genlab.data.emoji import EMOJI, load_emoji
from genlab.data.images import SOURCES, ImageData, idx_class_names, load_idx_dataset
from genlab.errors import GenlabError


def load_image_dataset(name: str, path: str | None = None) -> ImageData:
    """Load a dataset by name; `path` (a folder of the four IDX files) overrides the search."""
    if name == EMOJI:
        if path is not None:
            raise GenlabError(
                "data.path: the emoji are drawn from their font (GENLAB_EMOJI_FONT), not read from a folder"
            )
        return load_emoji()
    if name not in SOURCES:
        raise GenlabError(f"unknown image dataset '{name}' (known: {', '.join([*SOURCES, EMOJI])})")
    return load_idx_dataset(name, path)


def image_class_names(name: str, n: int | None = None) -> list[str]:
    """The names of the first `n` classes of image data set `name`, a class it does not name by its id
    (n None: all the classes it names). The emoji's are their Unicode names."""
    if name == EMOJI:
        names = load_emoji().class_names
        return [names[i] if i < len(names) else str(i) for i in range(len(names) if n is None else n)]
    return idx_class_names(name, n)
