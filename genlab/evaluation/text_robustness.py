"""Robustness of text classifiers: seeded perturbations of texts at a rate, used to score a classifier on
noisy input (genlab.evaluation.noise, the `noise` protocol) and to train on noisy input (a fine-tuning
recipe's `data.noise`).

Kinds of perturbation, each at a rate in [0, 1] = the fraction of units changed (round(rate * units) of them):
- "char": letters edited by one of insert / delete / substitute / swap with the next letter, drawn
  uniformly (the character-level noise of Belinkov & Bisk 2018 and of "TextBugger");
- "keyboard": letters replaced by a neighbouring key on a QWERTY keyboard (typing slips);
- "synonym": words (not stop words) replaced by a WordNet synonym (genlab.io.wordnet), as in EDA's
  synonym replacement. Only words WordNet knows can change, so the achieved rate can fall short of
  the asked one; `Perturbation.changed / units` says how far it got.
Rate 0 returns the text unchanged. The same text, kind, rate and generator state give the same result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from genlab.errors import GenlabError
from genlab.io.wordnet import synonyms_table

KINDS = ("char", "keyboard", "synonym")
CHAR_EDITS = ("insert", "delete", "substitute", "swap")
LETTERS = "abcdefghijklmnopqrstuvwxyz"
_WORD = re.compile(r"[A-Za-z]+")
_QWERTY = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_STAGGER = (0.0, 0.25, 0.75)  # how far each row of keys sits to the right of the one above


def _keyboard_neighbours() -> dict[str, str]:
    """letter -> the letters whose keys touch it (centres less than 1.26 key widths apart)."""
    where = {k: (col + _STAGGER[row], row) for row, keys in enumerate(_QWERTY) for col, k in enumerate(keys)}
    return {
        k: "".join(o for o, (x2, y2) in where.items() if o != k and (x - x2) ** 2 + (y - y2) ** 2 < 1.6)
        for k, (x, y) in where.items()
    }


KEYBOARD_NEIGHBOURS = _keyboard_neighbours()


@dataclass(frozen=True)
class Perturbation:
    text: str
    changed: int  # units edited (letters for char/keyboard, words for synonym)
    units: int  # units that could have been chosen: letters, or words


def check_kind_and_rate(kind: str, rate: float) -> None:
    if kind not in KINDS:
        raise GenlabError(f"unknown perturbation kind '{kind}' (known: {', '.join(KINDS)})")
    if not 0 <= rate <= 1:
        raise GenlabError(f"a perturbation rate is a fraction in [0, 1], got {rate}")


def _same_case(new: str, old: str) -> str:
    return new.upper() if old.isupper() else new


def _char_noise(text: str, rate: float, rng: np.random.Generator, keyboard: bool) -> Perturbation:
    letters = [i for i, c in enumerate(text) if c.isascii() and c.isalpha()]
    n = round(rate * len(letters))
    chosen = sorted(rng.choice(letters, size=n, replace=False).tolist()) if n else []
    chars = list(text)
    for i in reversed(chosen):  # right to left: an edit never shifts a position still to be edited
        old = chars[i]
        edit = "substitute" if keyboard else CHAR_EDITS[rng.integers(len(CHAR_EDITS))]
        if edit == "swap" and not (i + 1 < len(chars) and chars[i + 1].isalpha() and chars[i + 1] != old):
            edit = "substitute"  # nothing different to swap with: substitute instead, still one edit
        if keyboard:
            pool = KEYBOARD_NEIGHBOURS[old.lower()]
        else:
            pool = LETTERS.replace(old.lower(), "")
        new = _same_case(pool[rng.integers(len(pool))], old)
        if edit == "substitute":
            chars[i] = new
        elif edit == "insert":
            chars[i : i + 1] = [old, new]
        elif edit == "delete":
            chars[i] = ""
        else:
            chars[i], chars[i + 1] = chars[i + 1], old
    return Perturbation("".join(chars), n, len(letters))


def _synonym_noise(text: str, rate: float, rng: np.random.Generator) -> Perturbation:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # here: importing sklearn takes seconds

    table = synonyms_table()
    words = list(_WORD.finditer(text))
    eligible = [
        k for k, m in enumerate(words) if m.group().lower() not in ENGLISH_STOP_WORDS and m.group().lower() in table
    ]
    n = min(round(rate * len(words)), len(eligible))
    chosen = sorted(rng.choice(eligible, size=n, replace=False).tolist()) if n else []
    pieces, end = [], 0
    for k in chosen:
        m = words[k]
        options = table[m.group().lower()]
        new = options[rng.integers(len(options))]
        pieces += [text[end : m.start()], new.capitalize() if m.group()[0].isupper() else new]
        end = m.end()
    return Perturbation("".join(pieces) + text[end:], n, len(words))


def perturb(text: str, kind: str, rate: float, rng: np.random.Generator) -> Perturbation:
    """`text` with round(rate * units) of its letters (char, keyboard) or words (synonym) changed."""
    check_kind_and_rate(kind, rate)
    if kind == "synonym":
        return _synonym_noise(text, rate, rng)
    return _char_noise(text, rate, rng, keyboard=kind == "keyboard")


def perturb_all(texts: list[str], kind: str, rate: float, seed: int) -> list[Perturbation]:
    """Each text perturbed by its own generator, seeded by (seed, its position): what happens to one text does
    not depend on the others (a prefix of the list is perturbed as in the whole list)."""
    return [perturb(t, kind, rate, np.random.default_rng([seed, i])) for i, t in enumerate(texts)]
