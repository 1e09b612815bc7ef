"""Scoring a chat model per kind of instruction, through the chat interface, each with its own metric:

- translate, modernize: sacreBLEU BLEU and chrF (with signatures) against the reference verse, and the share
  of answers in the language asked for (Spanish, English);
- category: macro-F1 and accuracy over the fortune categories, and the share of answers that are a category;
- fortune: the share of answers in English that are not a bare category name (a quote, as asked);
- smalltalk: the share of answers in the language the user wrote in.

For every kind: the share of answers that ended with the end-of-turn marker (not cut at the length limit).
"""

from __future__ import annotations

from typing import Any

from genlab.data.chat import Exchange
from genlab.evaluation.language import language
from genlab.evaluation.text_metrics import accuracy, bleu, chrf, macro_f1

ASKED_LANGUAGE = {"translate": "spanish", "modernize": "english", "fortune": "english"}


def score_kind(kind: str, exchanges: list[Exchange], answers: list[str], ended: list[bool]) -> dict[str, Any]:
    """The metrics of one kind's answers (answers[i] replies to exchanges[i], ended[i]: it stopped by itself)."""
    references = [ex.reference for ex in exchanges]
    metrics: dict[str, Any] = {"examples": len(exchanges), "ended_rate": sum(ended) / len(ended)}
    if kind in ("translate", "modernize"):
        b, c = bleu(answers, references), chrf(answers, references)
        metrics |= {"metric": "bleu", "bleu": b["score"], "chrf": c["score"]}
        metrics["signature"] = {"bleu": b["signature"], "chrf": c["signature"]}
    elif kind == "category":
        labels = sorted(set(references))
        guessed = [a.strip().lower() for a in answers]
        metrics |= {
            "metric": "macro_f1",
            "macro_f1": macro_f1(references, guessed),
            "accuracy": accuracy(references, guessed),
            "format_rate": sum(g in labels for g in guessed) / len(guessed),
        }
    if kind in ASKED_LANGUAGE:
        asked = ASKED_LANGUAGE[kind]
        metrics["language_rate"] = sum(language(a) == asked for a in answers) / len(answers)
    if kind == "fortune":
        names = {ex.messages[-2]["content"].split()[-1].lower() for ex in exchanges}
        metrics["format_rate"] = sum(bool(a.strip()) and a.strip().lower() not in names for a in answers) / len(answers)
    if kind == "smalltalk":
        same = [language(a) == language(ex.messages[-2]["content"]) for a, ex in zip(answers, exchanges)]
        metrics["language_rate"] = sum(same) / len(same)
    return metrics


def headline(metrics: dict[str, Any]) -> str:
    """The key of the figure a kind is judged by: BLEU, macro-F1, or (no reference metric) a format share."""
    return next(k for k in ("bleu", "macro_f1", "language_rate", "format_rate", "ended_rate") if k in metrics)
