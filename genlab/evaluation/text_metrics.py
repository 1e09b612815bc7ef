"""Text metrics through the libraries the field reports with: scikit-learn for accuracy and F1,
sacreBLEU for BLEU and chrF (whose signature string says exactly how a score was computed).

Both libraries are imported inside the functions: they are slow to import and most commands never score text.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from genlab.errors import GenlabError


def _check_labels(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> None:
    if not len(y_true):
        raise GenlabError("cannot score an empty set of predictions")
    if len(y_true) != len(y_pred):
        raise GenlabError(f"{len(y_pred)} predictions for {len(y_true)} labels")


def accuracy(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> float:
    from sklearn.metrics import accuracy_score

    _check_labels(y_true, y_pred)
    return float(accuracy_score(y_true, y_pred))


def macro_f1(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> float:
    """The unweighted mean of per-class F1 over every class in either list; a class never predicted
    scores 0 (sklearn's zero_division=0), so rare classes count as much as common ones."""
    from sklearn.metrics import f1_score

    _check_labels(y_true, y_pred)
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def _reference_streams(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]) -> list:
    """sacreBLEU wants one list per reference set; we take one reference (or a list) per hypothesis."""
    if not len(hypotheses):
        raise GenlabError("cannot score an empty set of hypotheses")
    if len(hypotheses) != len(references):
        raise GenlabError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    per_hyp = [[r] if isinstance(r, str) else list(r) for r in references]
    width = len(per_hyp[0])
    if width == 0 or any(len(r) != width for r in per_hyp):
        raise GenlabError("every hypothesis needs the same number (at least one) of references")
    return [list(stream) for stream in zip(*per_hyp)]


def bleu(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]) -> dict:
    """Corpus BLEU (0-100) with sacreBLEU's defaults (13a tokenisation, exp smoothing)."""
    from sacrebleu.metrics import BLEU

    metric = BLEU()
    score = metric.corpus_score(list(hypotheses), _reference_streams(hypotheses, references))
    return {"score": float(score.score), "signature": str(metric.get_signature())}


def chrf(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]) -> dict:
    """Corpus chrF (0-100): character n-gram F-score, kinder than BLEU to short or inflected outputs."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    score = metric.corpus_score(list(hypotheses), _reference_streams(hypotheses, references))
    return {"score": float(score.score), "signature": str(metric.get_signature())}
