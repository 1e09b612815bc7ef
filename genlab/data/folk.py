"""Folk-tune corpora as token sequences: O'Neill's *Music of Ireland* (1850 tunes) and Ryan's *Mammoth
Collection* (1,059 tunes), the ABC files PyPI `music21` ships in its corpus, or a user's own ABC files.

Parsing ABC with music21 takes about 40 ms a tune, so a corpus is parsed once and its token sequences cached
as JSON under $GENLAB_DATA_DIR/folk/ (a user's files by the hash of their bytes). Tunes the event vocabulary
cannot hold (a metre change, an unusual note length, genlab.data.folk_tokens.TuneError) are counted and left
out; tunes that appear twice (the same metre and first four bars, as when both books print one tune) are
kept once; the rest are split by tune with a fixed seed: 90 % train, 5 % validation, 5 % test.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from genlab.data.folk_tokens import BAR, HEADER_LEN, TUNE_TYPES, TuneError, score_tokens
from genlab.data.images import cache_root
from genlab.errors import GenlabError
from genlab.io.files import atomic_write_text, read_json

CORPORA = ("oneills1850", "ryansMammoth")  # music21 corpus folders of ABC tunes
SPLIT_SEED = 2026
SPLITS = ("train", "validation", "test")
CACHE_VERSION = 1
TYPE_WORDS = {  # words of an R: field or a title -> a tune type
    "double jig": "jig",
    "single jig": "jig",
    "slip jig": "slipjig",
    "clog": "hornpipe",
    "fling": "strathspey",
}


def corpus_folder(name: str) -> Path:
    """The music21 corpus folder of `name` (one of CORPORA)."""
    import music21  # music21 takes 0.3 s to import: only music runs pay

    if name not in CORPORA:
        raise GenlabError(f"unknown folk corpus '{name}' (known: {', '.join(CORPORA)}, or data.path with .abc files)")
    return Path(music21.__file__).parent / "corpus" / name


def abc_files(name: str | None, path: str | Path | None) -> list[Path]:
    """The .abc files of a music21 corpus (name) or of a user's file or folder (path)."""
    if path is None:
        return sorted(corpus_folder(name).glob("*.abc"))
    path = Path(path)
    files = sorted(path.glob("*.abc")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise GenlabError(f"data.path {path}: no .abc file there")
    return files


def split_tunes(text: str) -> list[str]:
    """An ABC file's text -> its tunes (each from its X: line), with the file header's fields before each."""
    parts = re.split(r"\n(?=X:)", "\n" + text.replace("\r\n", "\n"))
    head = parts[0].strip()
    return [(head + "\n" + p.strip() if head else p.strip()) for p in parts[1:]]


def tune_type(abc: str) -> str:
    """The tune type from the R: field, else from the title (Ryan's titles end 'Reel', 'Hornpipe')."""
    field = re.search(r"^R:\s*(.*)$", abc, re.M)
    title = re.search(r"^T:\s*(.*)$", abc, re.M)
    for text in (field.group(1) if field else "", title.group(1) if title else ""):
        text = text.lower()
        for words, kind in TYPE_WORDS.items():
            if words in text:
                return kind
        for kind in TUNE_TYPES:
            if kind in text.replace(" ", ""):
                return kind
    return "other"


def parse_abc(abc: str) -> list[str]:
    """One ABC tune -> its tokens; a tune music21 cannot read or the vocabulary cannot hold raises TuneError."""
    from music21 import converter

    try:
        score = converter.parse(abc, format="abc")
    except Exception as exc:  # music21's ABC reader raises many types on a malformed tune
        raise TuneError(f"music21 cannot read it: {type(exc).__name__}") from exc
    return score_tokens(score, tune_type(abc))


def title_of(abc: str) -> str:
    found = re.search(r"^T:\s*(.*)$", abc, re.M)
    return found.group(1).strip() if found else ""


def parse_files(files: list[Path], source: str) -> dict[str, Any]:
    """Every tune of `files` as {title, source, tokens}, and why the others were left out."""
    tunes, skipped = [], Counter()
    for file in files:
        for abc in split_tunes(file.read_text(encoding="utf-8", errors="replace")):
            try:
                tunes.append({"title": title_of(abc), "source": source, "tokens": " ".join(parse_abc(abc))})
            except TuneError as exc:
                skipped[str(exc).split(" is not")[0].split(":")[0]] += 1
    return {"tunes": tunes, "skipped": dict(skipped)}


def deduplicate(tunes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the first of the tunes that share their header's metre and their first four bars."""
    seen, kept = set(), []
    for tune in tunes:
        tokens = tune["tokens"]
        key = (tokens.split()[1], tuple(tokens.split(" | ")[:4]))
        if key not in seen:
            seen.add(key)
            kept.append(tune)
    return kept


def assign_splits(n: int, seed: int = SPLIT_SEED) -> list[str]:
    """Each of n tunes' split: a fixed permutation, the first 90 % train, then 5 % validation, 5 % test
    (at least one tune each where n >= 3)."""
    order = np.random.default_rng(seed).permutation(n)
    held = max(1, round(0.05 * n)) if n >= 3 else 0
    names = ["train"] * n
    for rank, index in enumerate(order):
        if rank < held:
            names[index] = "validation"
        elif rank < 2 * held:
            names[index] = "test"
    return names


def source_key(corpus: list[str], path: str | Path | None) -> tuple[str, list[Path]]:
    """A name for the cache file, and the ABC files it is made from."""
    if path is not None:
        files = abc_files(None, path)
        digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
        return f"files-{digest}", files
    return "+".join(corpus), [f for name in corpus for f in abc_files(name, None)]


def load_folk(corpus: list[str], path: str | Path | None = None) -> dict[str, Any]:
    """The tunes of a corpus (or a user's ABC files), parsed once and cached: {"tunes": [{title, source,
    tokens, split}], "skipped": {reason: count}, "duplicates": count}."""
    name, files = source_key(corpus, path)
    cache = cache_root() / "folk" / f"{name}-v{CACHE_VERSION}.json"
    if cache.is_file():
        return read_json(cache, "folk-tune cache")
    parsed = {"tunes": [], "skipped": Counter()}
    for source in corpus if path is None else [str(path)]:
        got = parse_files(abc_files(source, None) if path is None else files, source)
        parsed["tunes"] += got["tunes"]
        parsed["skipped"].update(got["skipped"])
    tunes = deduplicate(parsed["tunes"])
    if len(tunes) < 3:
        raise GenlabError(f"{name}: only {len(tunes)} usable tunes; train, validation and test need 3 or more")
    for tune, split in zip(tunes, assign_splits(len(tunes))):
        tune["split"] = split
    result = {"tunes": tunes, "skipped": dict(parsed["skipped"]), "duplicates": len(parsed["tunes"]) - len(tunes)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, json.dumps(result, indent=0))
    return result


def split_tokens(data: dict[str, Any], split: str) -> list[list[str]]:
    """The token lists of one split's tunes."""
    if split not in SPLITS:
        raise GenlabError(f"unknown split '{split}' (choose {', '.join(SPLITS)})")
    return [t["tokens"].split() for t in data["tunes"] if t["split"] == split]


def read_prompt(abc: str, bars: int) -> tuple[list[str], str]:
    """The beginning of a tune to continue: an ABC tune's header and first `bars` bars as tokens (no <end>),
    and its key's tonic (the continuation is written in it). A tune music21 cannot read, or the vocabulary
    cannot hold, is one line."""
    from music21 import converter, key

    if "X:" not in abc:
        abc = "X:1\n" + abc
    try:
        score = converter.parse(abc, format="abc")
        tokens = score_tokens(score, tune_type(abc))
    except TuneError as exc:
        raise GenlabError(f"the prompt tune cannot be continued: {exc}") from None
    except Exception as exc:  # music21's ABC reader raises many types on malformed text
        raise GenlabError(f"the prompt is not an ABC tune music21 can read ({type(exc).__name__})") from None
    tonic = score.recurse().getElementsByClass(key.Key).first().tonic.name.replace("-", "b")
    head, body = tokens[:HEADER_LEN], tokens[HEADER_LEN:-1]
    kept, seen = [], 0
    for t in body:
        if seen == bars:
            break
        kept.append(t)
        seen += t == BAR
    return head + kept, tonic
