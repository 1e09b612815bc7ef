"""Scoring tunes as a musicologist would: MGEval-style histograms of generated against held-out tunes, whether
a tune reads back and fills its bars, whether it stays in its key (music21's key analysis), and a small
mode/metre classifier trained on real tunes that labels generated ones."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Any

import numpy as np

from genlab.data.folk import parse_abc
from genlab.data.folk_abc import abc_text
from genlab.data.folk_tokens import DURATIONS, METERS, TuneError, body_bars, events, header_of, tokens_score

INTERVALS = range(-12, 13)  # melodic intervals in semitones, wider ones clipped to an octave
GRID = Fraction(1, 12)  # onset positions in a bar on a 1/12-quarter grid (16ths and triplet 8ths both land)


def notes(tokens: list[str]) -> list[tuple[int | None, Fraction, Fraction]]:
    """(pitch step or None, duration, onset within its bar) of every well-formed event of a tune."""
    out = []
    for bar in body_bars(tokens):
        onset = Fraction(0)
        for step, length, _ in events(bar, strict=False):
            out.append((step, length, onset))
            onset += length
    return out


def histograms(tunes: list[list[str]]) -> dict[str, np.ndarray]:
    """Normalised pitch-class (from the tonic), interval, duration and onset-position histograms of tunes."""
    counts = {"pitch_class": Counter(), "interval": Counter(), "duration": Counter(), "onset": Counter()}
    for tokens in tunes:
        pitches = []
        for step, length, onset in notes(tokens):
            counts["duration"][DURATIONS.index(length)] += 1
            counts["onset"][int(onset / GRID)] += 1
            if step is not None:
                counts["pitch_class"][step % 12] += 1
                pitches.append(step)
        for a, b in zip(pitches, pitches[1:]):
            counts["interval"][min(max(b - a, -12), 12)] += 1
    bins = {"pitch_class": range(12), "interval": INTERVALS, "duration": range(len(DURATIONS)), "onset": range(144)}
    out = {}
    for name, counter in counts.items():
        h = np.array([counter[b] for b in bins[name]], dtype=float)
        out[name] = h / max(h.sum(), 1)
    return out


def overlaps(generated: list[list[str]], reference: list[list[str]]) -> dict[str, float]:
    """Histogram intersection (1 = the same distribution, 0 = disjoint) of each feature."""
    g, r = histograms(generated), histograms(reference)
    return {name: float(np.minimum(g[name], r[name]).sum()) for name in g}


def reads_back(tokens: list[str]) -> bool:
    """Every event well formed, and its ABC, read by music21, gives the same tokens back."""
    try:
        for bar in body_bars(tokens):
            events(bar)
        return parse_abc(abc_text(tokens, "D", strict=True)) == _ended(tokens)
    except TuneError:
        return False


def _ended(tokens: list[str]) -> list[str]:
    """The tokens as the reader returns them: empty bars dropped, ending in `| <end>`."""
    body = [t for bar in body_bars(tokens) if bar for t in [*bar, "|"]]
    return tokens[:4] + body + ["<end>"]


def fills_bars(tokens: list[str]) -> bool:
    """Every bar holds exactly the metre's length, except the first (a pickup) and the last, and except a short
    bar at the end of a part (before a repeat sign) that a pickup completes: the next bar's, or the first's."""
    length = header_of(tokens).bar_length
    bars = [sum((d for _, d, _ in events(bar, strict=False)), Fraction(0)) for bar in body_bars(tokens)]
    i = 1
    while i < len(bars) - 1:
        if bars[i] != length and bars[i] + bars[i + 1] == length:
            i += 1  # a part's last bar and the next part's pickup
        elif bars[i] != length and bars[i] + bars[0] != length:
            return False
        i += 1
    return len(bars) >= 2


def key_consistent(tokens: list[str], tonic: str = "D") -> bool:
    """music21's key analysis (Krumhansl-Schmuckler) finds the requested tonic and the mode's major/minor
    family (dorian counts as minor, mixolydian as major: the profiles know only those two)."""
    mode = header_of(tokens).mode
    try:
        found = tokens_score(tokens, tonic, strict=False).analyze("key")
    except Exception:  # an empty or degenerate score: music21 raises its own types
        return False
    family = "minor" if mode in ("minor", "dorian") else "major"
    return found.tonic.name == tonic and found.mode == family


def features(tokens: list[str]) -> np.ndarray:
    """What the mode/metre classifier sees of a tune's body (never its header): the pitch-class histogram from
    the tonic, the share of bars of each metre's length, the duration and onset histograms."""
    h = histograms([tokens])
    bars = [sum((d for _, d, _ in events(bar, strict=False)), Fraction(0)) for bar in body_bars(tokens)]
    lengths = Counter(bars)
    bar_share = [lengths[Fraction(4 * int(m.split("/")[0]), int(m.split("/")[1]))] / max(len(bars), 1) for m in METERS]
    return np.concatenate([h["pitch_class"], bar_share, h["duration"], h["onset"]])


class HeaderClassifier:
    """Logistic regressions from a tune's body to its mode and its metre, trained on real tunes."""

    def __init__(self, tunes: list[list[str]]):
        from sklearn.linear_model import LogisticRegression  # sklearn takes seconds to import: only here

        x = np.stack([features(t) for t in tunes])
        self.models = {}
        for field, index in (("mode", 2), ("meter", 1)):
            labels = [t[index][2:] for t in tunes]
            self.models[field] = LogisticRegression(max_iter=2000, C=10.0).fit(x, labels)

    def accuracy(self, tunes: list[list[str]], wanted: list[tuple[str, str]]) -> dict[str, float]:
        """Share of tunes labelled with their (meter, mode)."""
        x = np.stack([features(t) for t in tunes])
        out = {}
        for field, index in (("mode", 1), ("meter", 0)):
            guess = self.models[field].predict(x)
            out[field] = float(np.mean([g == w[index] for g, w in zip(guess, wanted)]))
        return out

    def meter_confusion(self, tunes: list[list[str]]) -> dict[str, dict[str, int]]:
        """Requested metre -> how many of its tunes the classifier gave each metre: where its errors lie."""
        guess = self.models["meter"].predict(np.stack([features(t) for t in tunes]))
        out: dict[str, Counter] = {}
        for tune, g in zip(tunes, guess):
            out.setdefault(tune[1][2:], Counter())[str(g)] += 1
        return {m: dict(c.most_common()) for m, c in sorted(out.items())}


def score_tunes(generated: list[list[str]], reference: list[list[str]], train: list[list[str]]) -> dict[str, Any]:
    """Every statistic of generated tunes (header first, as requested) against held-out real ones."""
    wanted = [(t[1][2:], t[2][2:]) for t in generated]
    classifier = HeaderClassifier(train)
    real = classifier.accuracy(reference, [(t[1][2:], t[2][2:]) for t in reference])
    fake = classifier.accuracy(generated, wanted)
    return {
        "tunes": len(generated),
        "overlap": overlaps(generated, reference),
        "reads_back": float(np.mean([reads_back(t) for t in generated])),
        "fills_bars": float(np.mean([fills_bars(t) for t in generated])),
        "reads_back_and_fills_bars": float(np.mean([reads_back(t) and fills_bars(t) for t in generated])),
        "real_fills_bars": float(np.mean([fills_bars(t) for t in reference])),
        "key_consistency": float(np.mean([key_consistent(t) for t in generated])),
        "real_key_consistency": float(np.mean([key_consistent(t) for t in reference])),
        "classifier": {
            "real_accuracy": real,
            "generated_accuracy": fake,
            "ratio": {k: fake[k] / real[k] if real[k] else 0.0 for k in real},
            "meter_confusion": {
                "real": classifier.meter_confusion(reference),
                "generated": classifier.meter_confusion(generated),
            },
        },
    }
