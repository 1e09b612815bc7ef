"""Text corpora: three verse-aligned Bibles, the Debian fortunes, and any text file a user points at.

Every corpus is split the same way forever: a record's split is a hash of a stable key (the verse
reference "Gen 1:1" for the Bibles, the text itself otherwise) -> 90% train, 5% validation, 5% test.
Because the key of a verse is its reference, a verse held out in one Bible version is held out in
all of them, so a translation model never trains on a test verse in either language.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from genlab.data.images import cache_root
from genlab.errors import GenlabError
from genlab.io.files import atomic_write_text

SPLITS = ("train", "validation", "test")
SWORD_DIR = Path("/usr/share/sword")
FORTUNES_DIR = Path("/usr/share/games/fortunes")

# version -> (sword module, Debian package that installs it)
BIBLE_VERSIONS = {
    "kjv": ("engKJV2006eb", "sword-text-kjv"),
    "web": ("engWEB2015eb", "sword-text-web"),
    "rv1909": ("spaRV1909eb", "sword-text-sparv"),
}
# Bump when the cleaning changes, so stale caches are not reused.
CLEANING_VERSION = 2


@dataclass(frozen=True)
class TextCorpus:
    name: str
    source: str
    description: str


TEXT_CORPORA = {
    **{
        f"bible-{v}": TextCorpus(
            f"bible-{v}",
            f"Debian {pkg} (sword module {mod}, read with pysword)",
            "one record per verse, verse-aligned with the other Bible versions",
        )
        for v, (mod, pkg) in BIBLE_VERSIONS.items()
    },
    "fortunes": TextCorpus(
        "fortunes", "Debian fortunes (/usr/share/games/fortunes)", "one record per quote, labelled by category"
    ),
}


def split_of(key: str) -> str:
    """The fixed split of a record: sha1 (stable across processes, unlike hash()) -> 90/5/5."""
    bucket = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") % 100
    return "train" if bucket < 90 else "validation" if bucket < 95 else "test"


def _check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise GenlabError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def text_cache_dir() -> Path:
    return cache_root() / "text"


# ---------------------------------------------------------------------------------------------
# Bible


@dataclass(frozen=True)
class Verse:
    ref: str  # "Gen 1:1" (OSIS book name), the key shared by every version
    book: str
    chapter: int
    verse: int
    text: str

    @property
    def split(self) -> str:
        return split_of(self.ref)


# Footnotes and cross-references sit between words without spaces ("God<note>..</note>created"),
# so they and the line/paragraph markers become a space; inline tags (<w>, <q>, <transChange> ...)
# are dropped with their content kept. Non-canonical titles are editors' headings, not text.
_NOTE = re.compile(r"<note\b.*?</note>|<title(?![^>]*canonical=\"true\")[^>]*>.*?</title>", re.S)
_BREAK = re.compile(r"<(?:/?l|/?lg|lb|/?div|chapter|milestone)\b[^>]*>")
_TAG = re.compile(r"<[^>]*>")
_USFM = re.compile(r"\\\+?[a-z]+\d*(?:\*|\s)")  # USFM markers left in the text: "\nd LORD\nd*"
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?’”)\]])")
_SPACE_AFTER_OPEN = re.compile(r"([“‘(\[¿¡])\s+")


def clean_osis(raw: str) -> str:
    text = _NOTE.sub(" ", raw)
    text = _BREAK.sub(" ", text)
    text = _USFM.sub("", _TAG.sub("", text))
    text = text.replace("¶", " ").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    text = re.sub(r"\s+", " ", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _SPACE_AFTER_OPEN.sub(r"\1", text).strip()


def _bible_version(version: str) -> tuple[str, str]:
    if version not in BIBLE_VERSIONS:
        raise GenlabError(f"unknown Bible version {version!r}; choose one of {', '.join(BIBLE_VERSIONS)}")
    return BIBLE_VERSIONS[version]


def _sword_bible(version: str):
    module, package = _bible_version(version)
    try:
        from pysword.modules import SwordModules
    except ImportError as exc:
        raise GenlabError("reading the Bible needs pysword: pip install pysword") from exc
    if not (SWORD_DIR / "mods.d" / f"{module}.conf").is_file():
        raise GenlabError(f"Bible {version!r} not installed: run `sudo apt-get install -y {package}`")
    modules = SwordModules(str(SWORD_DIR))
    modules.parse_modules()
    return modules.get_bible_from_module(module)


def bible_references(version: str) -> list[str]:
    """All verse references of a version, from the module's index alone (fast: no decompression)."""
    bible = _sword_bible(version)
    return [
        f"{book.osis_name} {c}:{v}"
        for books in bible.get_structure().get_books().values()
        for book in books
        for c in range(1, book.num_chapters + 1)
        for v in range(1, book.chapter_lengths[c - 1] + 1)
    ]


def read_bible(version: str, books: list[str] | None = None) -> list[Verse]:
    """Parse verses straight from the sword module (about a minute for a whole Bible), no cache."""
    bible = _sword_bible(version)
    verses = []
    for testament in bible.get_structure().get_books().values():
        for book in testament:
            if books is not None and book.osis_name not in books:
                continue
            raws = bible.get_iter(books=[book.osis_name], clean=False)
            refs = ((c, v) for c in range(1, book.num_chapters + 1) for v in range(1, book.chapter_lengths[c - 1] + 1))
            for (c, v), raw in zip(refs, raws):
                text = clean_osis(raw)
                if text:  # some modules leave a verse empty where it is merged into its neighbour
                    verses.append(Verse(f"{book.osis_name} {c}:{v}", book.osis_name, c, v, text))
    return verses


def _bible_cache(version: str) -> Path:
    module, _ = _bible_version(version)
    return text_cache_dir() / f"bible-{module}-v{CLEANING_VERSION}.jsonl"


def load_bible(version: str, split: str | None = None) -> list[Verse]:
    """All verses of one version (or of one split), parsed once and then read from the cache."""
    _check_split(split)
    path = _bible_cache(version)
    if path.is_file():
        verses = [Verse(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]
    else:
        verses = read_bible(version)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(json.dumps(asdict(v), ensure_ascii=False) + "\n" for v in verses))
    return [v for v in verses if split is None or v.split == split]


def parallel_verses(src: str, tgt: str, split: str | None = None) -> list[tuple[Verse, Verse]]:
    """(source verse, target verse) pairs for every reference present in both versions, in order."""
    target = {v.ref: v for v in load_bible(tgt, split)}
    return [(v, target[v.ref]) for v in load_bible(src, split) if v.ref in target]


# ---------------------------------------------------------------------------------------------
# Fortunes


@dataclass(frozen=True)
class Fortune:
    text: str
    category: str

    @property
    def split(self) -> str:
        return split_of(self.text)


def load_fortunes(split: str | None = None, folder: Path = FORTUNES_DIR) -> list[Fortune]:
    """One record per quote. Only the top-level files: the offensive ones live in `off/`."""
    _check_split(split)
    if not folder.is_dir():
        raise GenlabError(f"fortunes not found in {folder}: run `sudo apt-get install -y fortunes`")
    quotes = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix in (".dat", ".u8"):
            continue
        for quote in re.split(r"^%\s*$", _read_text(path), flags=re.M):
            quote = quote.strip("\n").rstrip()
            if quote.strip():
                quotes.append(Fortune(quote, path.name))
    return [q for q in quotes if split is None or q.split == split]


# ---------------------------------------------------------------------------------------------
# User files and the name dispatcher


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise GenlabError(f"{path} looks binary, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # old fortune files predate UTF-8


def read_jsonl(path: Path) -> list[tuple[int, object]]:
    """(line number, parsed JSON value) for every non-blank line; a bad line is one error naming it."""
    records = []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise GenlabError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
    return records


def _file_lines(path: Path) -> list[str]:
    if path.suffix != ".jsonl":
        return [line for line in _read_text(path).splitlines() if line.strip()]
    lines = []
    for n, record in read_jsonl(path):
        text = record.get("text") if isinstance(record, dict) else record
        if not isinstance(text, str):
            raise GenlabError(f'{path}:{n}: expected a string or an object with a "text" field')
        lines.append(text)
    return lines


def load_text_corpus(name_or_path: str | Path, split: str | None = None) -> list[str]:
    """Texts of a named corpus (see TEXT_CORPORA), a .txt/.jsonl file, or a folder of .txt files."""
    _check_split(split)
    name = str(name_or_path)
    if name in TEXT_CORPORA:
        if name == "fortunes":
            return [f.text for f in load_fortunes(split)]
        return [v.text for v in load_bible(name.removeprefix("bible-"), split)]
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".txt", ".jsonl"))
    elif path.is_file():
        files = [path]
    else:
        raise GenlabError(f"unknown text corpus {name!r}: not one of {', '.join(TEXT_CORPORA)} nor a file or folder")
    texts = [line for f in files for line in _file_lines(f)]
    if not texts:
        raise GenlabError(f"text corpus {name!r} is empty")
    return [t for t in texts if split is None or split_of(t) == split]


def is_parsed(name: str) -> bool:
    """False for a Bible whose verses are not cached yet (its first use parses it, ~2 minutes)."""
    return not name.startswith("bible-") or _bible_cache(name.removeprefix("bible-")).is_file()


def corpus_sizes(name: str) -> dict[str, int]:
    """Records per split, for `genlab data list` (parses the Bible once if it is not cached)."""
    if name not in TEXT_CORPORA:
        raise GenlabError(f"unknown text corpus {name!r}; choose one of {', '.join(TEXT_CORPORA)}")
    records = load_fortunes() if name == "fortunes" else load_bible(name.removeprefix("bible-"))
    sizes = dict.fromkeys(SPLITS, 0)
    for r in records:
        sizes[r.split] += 1
    return sizes
