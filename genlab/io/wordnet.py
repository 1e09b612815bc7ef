"""Synonyms from WordNet's database files (Debian `wordnet-base`: /usr/share/wordnet), read directly.

The files are plain text. `index.<pos>` has one line per lemma: `lemma pos synset_cnt p_cnt [ptr]*p_cnt
sense_cnt tagsense_cnt offset*synset_cnt`, the synsets ordered by how often the sense occurs (the most
frequent first); `data.<pos>` has one line per synset: `offset lex_filenum ss_type w_cnt(hex) word lex_id ...`.
Both start with a licence block whose lines begin with two spaces.

A word's synonyms are the other lower-case members of all its synsets, as in EDA's synonym replacement
(Wei & Zou 2019, which reads the same database through NLTK): WordNet has no part-of-speech tagger, so a
substitute may come from another sense ("run" -> "tally"); that is part of the noise this measures.
Collocations keep their words ("computing_machine" -> "computing machine"); proper nouns ("Indiana",
a sense of "in") are left out.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from genlab.errors import GenlabError
from genlab.io.validate import environ_folder

DEFAULT_FOLDER = Path("/usr/share/wordnet")
PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
_LEMMA = re.compile(r"[a-z]+")  # a word that can be looked up: one lower-case word
_SYNONYM = re.compile(r"[a-z]+(_[a-z]+)*")  # lower-case words joined by '_': no proper nouns, digits, dots


def wordnet_folder() -> Path:
    return environ_folder("GENLAB_WORDNET_DIR", Path(DEFAULT_FOLDER))


def _lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return [line for line in fh if not line.startswith("  ")]  # skip the licence block


def _synset_words(path: Path) -> dict[str, list[str]]:
    """offset -> the synset's words, markers such as '(a)' on adjectives dropped."""
    synsets = {}
    for line in _lines(path):
        fields = line.split()
        count = int(fields[3], 16)
        synsets[fields[0]] = [re.sub(r"\(.*\)$", "", w) for w in fields[4 : 4 + 2 * count : 2]]
    return synsets


@functools.cache
def synonyms_table(folder: Path | None = None) -> dict[str, tuple[str, ...]]:
    """lemma -> its synonyms (sorted), for every one-word lemma that has any."""
    folder = folder or wordnet_folder()
    missing = [
        f"{kind}.{pos}"
        for pos in PARTS_OF_SPEECH
        for kind in ("index", "data")
        if not (folder / f"{kind}.{pos}").is_file()
    ]
    if missing:
        raise GenlabError(
            f"WordNet's database is not in {folder} (no {missing[0]}): install it with "
            "`apt-get install wordnet-base` or set GENLAB_WORDNET_DIR"
        )
    table: dict[str, set[str]] = {}
    for pos in PARTS_OF_SPEECH:
        synsets = _synset_words(folder / f"data.{pos}")
        for line in _lines(folder / f"index.{pos}"):
            fields = line.split()
            lemma, synset_count = fields[0], int(fields[2])
            if not _LEMMA.fullmatch(lemma):
                continue
            offsets = fields[-synset_count:]  # the offsets close the line
            found = {
                w.replace("_", " ")
                for offset in offsets
                for w in synsets.get(offset, [])
                if _SYNONYM.fullmatch(w) and w != lemma
            }
            if found:
                table.setdefault(lemma, set()).update(found)
    return {lemma: tuple(sorted(words)) for lemma, words in table.items()}
