"""Verse-aligned Bible pairs split by book: test verses come from books never seen in training.

genlab.data.text splits verses by a hash of their reference, so a test verse's neighbours (and the parallel
passages of the same book) are in training. A translation model is better measured on whole books it has
never seen: `book_split` holds out the TEST_BOOKS for testing and the VALIDATION_BOOKS for validation, and
trains on every other book. Both lists mix genres (narrative, poetry, prophecy, letters) and testaments.

Pairs come from the cached Bibles of genlab.data.text (parsed once), or from a .jsonl file of
{"book": ..., "source": ..., "target": ...} records (tiny runs, your own parallel text).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genlab.data.text import BIBLE_VERSIONS, SPLITS, parallel_verses, read_jsonl
from genlab.errors import GenlabError

# OSIS book names. Test: ~700 verses; validation: ~300.
TEST_BOOKS = ("Ruth", "Lam", "Jonah", "Mic", "Phil", "Jas", "1John")
VALIDATION_BOOKS = ("Joel", "Obad", "Hag", "Col", "Titus", "Jude")


@dataclass(frozen=True)
class Pair:
    ref: str  # "Ruth 1:1" (or "FILE:line" for a file's records)
    book: str
    source: str
    target: str


def book_split(
    book: str, test_books: tuple[str, ...] | list[str], validation_books: tuple[str, ...] | list[str]
) -> str:
    """The split a whole book belongs to."""
    if book in test_books:
        return "test"
    return "validation" if book in validation_books else "train"


def _check_books(test_books, validation_books) -> None:
    both = sorted(set(test_books) & set(validation_books))
    if both:
        raise GenlabError(f"book {both[0]!r} is both a test and a validation book")
    if not test_books or not validation_books:
        raise GenlabError("the book split needs at least one test book and one validation book")


def bible_pairs(source: str, target: str) -> list[Pair]:
    """Every verse present in both versions, as (source text, target text), in canonical order."""
    for version in (source, target):
        if version not in BIBLE_VERSIONS:
            raise GenlabError(f"unknown Bible version {version!r}; choose one of {', '.join(BIBLE_VERSIONS)}")
    if source == target:
        raise GenlabError(f"source and target are both {source!r}")
    return [Pair(s.ref, s.book, s.text, t.text) for s, t in parallel_verses(source, target)]


def file_pairs(path: Path) -> list[Pair]:
    """{"book", "source", "target"} records of a .jsonl file; a bad record is one line naming it."""
    if not path.is_file():
        raise GenlabError(f"no parallel-text file {path}")
    pairs = []
    for n, record in read_jsonl(path):
        fields = [record.get(k) if isinstance(record, dict) else None for k in ("book", "source", "target")]
        if not all(isinstance(f, str) and f.strip() for f in fields):
            raise GenlabError(f'{path}:{n}: expected an object with non-empty "book", "source" and "target" strings')
        pairs.append(Pair(f"{path.name}:{n}", *fields))
    return pairs


def split_pairs(pairs: list[Pair], test_books=TEST_BOOKS, validation_books=VALIDATION_BOOKS) -> dict[str, list[Pair]]:
    """train / validation / test by book; every split must hold at least one pair."""
    _check_books(test_books, validation_books)
    splits: dict[str, list[Pair]] = {s: [] for s in SPLITS}
    for pair in pairs:
        splits[book_split(pair.book, test_books, validation_books)].append(pair)
    for name, members in splits.items():
        if not members:
            raise GenlabError(f"the {name} split is empty: none of its books is in the data")
    return splits


def load_parallel(
    source: str, target: str, path: str | None = None, test_books=TEST_BOOKS, validation_books=VALIDATION_BOOKS
) -> dict[str, list[Pair]]:
    """The book split of the Bible pair source -> target (e.g. web -> rv1909), or of a .jsonl file."""
    pairs = file_pairs(Path(path).expanduser()) if path else bible_pairs(source, target)
    return split_pairs(pairs, test_books, validation_books)
