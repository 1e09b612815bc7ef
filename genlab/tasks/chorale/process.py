"""The chorale process: bar-aligned windows of the token grid as padded batches, and the held-out NLL per token
(the transformer's and an n-gram's, on the same tokens). The loss is the folk task's (genlab.tasks.folk.process:
mean next-token cross-entropy, <pad> skipped; both vocabularies put <pad> at id 0)."""

from __future__ import annotations

import torch

from genlab.data.chorale_tokens import IDS, PAD_ID, STEPS_PER_BAR
from genlab.evaluation.ngram import KneserNey
from genlab.tasks.folk.process import token_nll

BAR_TOKENS = 4 * STEPS_PER_BAR  # 64: S A T B of 16 steps


def windows(sequences: list[list[str]], bars: int, stride: int = 1) -> torch.Tensor:
    """Each chorale's windows of `bars` bars starting every `stride` bars, each behind the chorale's mode token,
    the last ones padded: sequences (mode first) -> ids (N, 1 + 64 x bars)."""
    rows = []
    for tokens in sequences:
        ids = [IDS[t] for t in tokens]
        body = ids[1:]
        for start in range(0, max(len(body) - BAR_TOKENS * (bars - stride), 1), BAR_TOKENS * stride):
            piece = [ids[0], *body[start : start + BAR_TOKENS * bars]]
            rows.append(piece + [PAD_ID] * (1 + BAR_TOKENS * bars - len(piece)))
    return torch.tensor(rows, dtype=torch.long)


@torch.inference_mode()
def nll_per_token(model: torch.nn.Module, sequences: list[list[str]], bars: int, batch_size: int = 32) -> float:
    """Held-out -log p (nats) per grid token: each chorale cut into windows of `bars` bars that do not overlap,
    every token after the mode scored given the ones before it in its window."""
    ids = windows(sequences, bars, stride=bars)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    for batch in ids.split(batch_size):
        out = model(batch)  # the transformer's output has .logits; the LSTM baseline returns logits
        total += token_nll(getattr(out, "logits", out), batch).sum().item()
        count += int((batch[:, 1:] != PAD_ID).sum())
    model.train(was_training)
    return total / max(count, 1)


NGRAM_ORDERS = (2, 3, 4, 5, 6, 8, 9, 12)  # 5 sees the same voice one step back, 9 two steps


def ngram_nll(model: KneserNey, sequences: list[list[str]]) -> float:
    """The n-gram's -log p per grid token, each chorale whole (its mode given)."""
    seqs = [[IDS[t] for t in s] for s in sequences]
    return sum(model.sequence_nll(s, 1) for s in seqs) / max(sum(len(s) - 1 for s in seqs), 1)


def ngram_baseline(train: list[list[str]], validation: list[list[str]], test: list[list[str]]) -> dict:
    """Interpolated Kneser-Ney of the order best on validation: its test NLL per token and every order's figure."""
    seqs = [[IDS[t] for t in s] for s in train]
    scores, models = {}, {}
    for order in NGRAM_ORDERS:
        models[order] = KneserNey(order, len(IDS)).fit(seqs)
        scores[order] = ngram_nll(models[order], validation)
    best = min(scores, key=scores.get)
    return {"nll_per_token": ngram_nll(models[best], test), "order": best, "validation_nll_by_order": scores}
