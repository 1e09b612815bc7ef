"""Scoring a translator: any callable source -> hypothesis, against references, with sacreBLEU's BLEU and chrF
and their signatures (which say exactly how each score was computed, so figures compare across papers).

Reusable by any model that translates: the dedicated encoder-decoder (genlab/tasks/translation), a decoder-only
fine-tune, a chat model prompted "translate into Spanish: ...", or the copy baseline (`copy_source`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from genlab.errors import GenlabError
from genlab.evaluation.text_metrics import bleu, chrf


def score_hypotheses(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Corpus BLEU and chrF (0-100) with their sacreBLEU signatures."""
    b, c = bleu(hypotheses, references), chrf(hypotheses, references)
    return {"bleu": b["score"], "chrf": c["score"], "signature": {"bleu": b["signature"], "chrf": c["signature"]}}


def score_translator(
    translate: Callable[[list[str]], list[str]], sources: Sequence[str], references: Sequence[str]
) -> dict[str, Any]:
    """Translate every source with `translate` (a list of sources -> their hypotheses, in order; wrap a one-at-a-time
    function with `one_by_one`) and score it: BLEU, chrF, signatures, the number of sentences, the CPU seconds
    the translation took, and the hypotheses themselves."""
    if len(sources) != len(references):
        raise GenlabError(f"{len(sources)} sources for {len(references)} references")
    start = time.process_time()
    hypotheses = list(translate(list(sources)))
    seconds = time.process_time() - start
    if len(hypotheses) != len(sources) or not all(isinstance(h, str) for h in hypotheses):
        raise GenlabError(f"the translator returned {len(hypotheses)} hypotheses (strings) for {len(sources)} sources")
    return {
        **score_hypotheses(hypotheses, references),
        "sentences": len(sources),
        "cpu_seconds": round(seconds, 3),
        "hypotheses": hypotheses,
    }


def one_by_one(translate: Callable[[str], str]) -> Callable[[list[str]], list[str]]:
    """A source -> hypothesis function as the list -> list translator `score_translator` takes."""
    return lambda sources: [translate(s) for s in sources]


def copy_source(sources: list[str]) -> list[str]:
    """The copy baseline: the source itself as its translation (names and numbers still match)."""
    return list(sources)
