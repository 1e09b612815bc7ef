"""The baselines a folk-tune model must beat, scored exactly as it is (NLL of each held-out tune's body per note
event): an interpolated Kneser-Ney n-gram (order chosen on the validation tunes) and a small LSTM trained for
the same CPU time as the transformer."""

from __future__ import annotations

import time
from typing import Any

import torch

from genlab.core.optim import adamw
from genlab.data.folk_tokens import HEADER_LEN, NOTE_HEAD_IDS, VOCAB
from genlab.evaluation.ngram import KneserNey
from genlab.models.lstm import LSTMConfig, LSTMLanguageModel
from genlab.tasks.folk.process import PAD_ID, draw_rows, nll_per_note, token_nll

NGRAM_ORDERS = range(2, 9)
LSTM_BATCH = 16
LSTM_LR = 3e-3


def unpadded(ids: torch.Tensor) -> list[list[int]]:
    """Padded ids (N, T) -> each tune's real ids."""
    return [row[row != PAD_ID].tolist() for row in ids]


def ngram_nll_per_note(model: KneserNey, tunes: list[list[int]]) -> float:
    heads = set(NOTE_HEAD_IDS)
    total = sum(model.sequence_nll(t, HEADER_LEN) for t in tunes)
    return total / max(sum(sum(i in heads for i in t[HEADER_LEN:]) for t in tunes), 1)


def best_ngram(train: torch.Tensor, validation: torch.Tensor) -> tuple[KneserNey, dict[int, float]]:
    """The Kneser-Ney model of the order with the lowest validation NLL per note, and every order's figure."""
    train_seqs, val_seqs = unpadded(train), unpadded(validation)
    scores, models = {}, {}
    for order in NGRAM_ORDERS:
        models[order] = KneserNey(order, len(VOCAB)).fit(train_seqs)
        scores[order] = ngram_nll_per_note(models[order], val_seqs)
    best = min(scores, key=scores.get)
    return models[best], scores


def train_lstm(
    train: torch.Tensor, cpu_seconds: float, seed: int, vocab_size: int = len(VOCAB), by_length: bool = False
) -> tuple[LSTMLanguageModel, dict[str, Any]]:
    """An LSTM trained with AdamW on random batches of padded rows (tunes, or chorale windows) (N, T) until
    `cpu_seconds` of this process's CPU time; by_length: batches of rows of similar length, as the
    transformer's recipe may draw them (genlab.tasks.folk.process.draw_rows)."""
    torch.manual_seed(seed)
    model = LSTMLanguageModel(LSTMConfig(vocab_size=vocab_size))
    optimizer = adamw(model, LSTM_LR, (0.9, 0.99), 0.0)
    draw = torch.Generator().manual_seed(seed)
    lengths = (train != PAD_ID).sum(dim=1)  # (N,)
    start, steps = time.process_time(), 0
    model.train()
    while time.process_time() - start < cpu_seconds:
        ids = train[draw_rows(lengths, LSTM_BATCH, draw, by_length)]
        ids = ids[:, : int((ids != PAD_ID).sum(dim=1).max())]
        loss = token_nll(model(ids), ids).sum() / (ids[:, 1:] != PAD_ID).sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        steps += 1
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    return model, {"steps": steps, "cpu_seconds": round(time.process_time() - start, 1), "parameters": params}


def baseline_scores(
    train: torch.Tensor,
    validation: torch.Tensor,
    test: torch.Tensor,
    lstm_cpu_seconds: float | None,
    seed: int,
    by_length: bool = False,
) -> dict[str, Any]:
    """Test NLL per note event of the n-gram (deterministic) and, given a CPU time, of an LSTM trained for it
    (its step count, hence its figure, depends on the machine's speed)."""
    ngram, by_order = best_ngram(train, validation)
    scores: dict[str, Any] = {
        "kneser_ney": {
            "nll_per_note": ngram_nll_per_note(ngram, unpadded(test)),
            "order": ngram.order,
            "validation_nll_per_note_by_order": by_order,
        }
    }
    if lstm_cpu_seconds is not None:
        lstm, trained = train_lstm(train, lstm_cpu_seconds, seed, by_length=by_length)
        scores["lstm"] = {
            "nll_per_note": nll_per_note(lstm, test),
            "budget_cpu_seconds": lstm_cpu_seconds,
            "batches_by_length": by_length,
            **trained,
        }
    return scores
