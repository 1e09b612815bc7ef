"""An interpolated Kneser-Ney n-gram model over token ids: the classic baseline a sequence model must beat.

Chen & Goodman's interpolated Kneser-Ney with one absolute discount per order: the highest order uses raw
counts, every lower order continuation counts (in how many contexts a token follows its shorter context), and
the unigram level mixes in a uniform distribution over the vocabulary so that no token has probability zero.
Each sequence is padded at its start with copies of its first token, so every position has a full context.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

DISCOUNT = 0.75


class KneserNey:
    def __init__(self, order: int, vocab_size: int, discount: float = DISCOUNT):
        if order < 1:
            raise ValueError(f"an n-gram model needs order >= 1, got {order}")
        self.order, self.vocab_size, self.d = order, vocab_size, discount
        # counts[k][context of k-1 tokens][token]: raw counts at the top order, continuation counts below.
        self.counts: list[dict[tuple[int, ...], Counter]] = [defaultdict(Counter) for _ in range(order + 1)]

    def fit(self, sequences: list[list[int]]) -> KneserNey:
        n = self.order
        for seq in sequences:
            padded = [seq[0]] * (n - 1) + list(seq)
            for i in range(n - 1, len(padded)):
                self.counts[n][tuple(padded[i - n + 1 : i])][padded[i]] += 1
        for k in range(n, 1, -1):  # continuation counts of order k-1 from the distinct extensions at order k
            for context, nexts in self.counts[k].items():
                for token in nexts:
                    self.counts[k - 1][context[1:]][token] += 1
        self.totals = [{c: (sum(t.values()), len(t)) for c, t in level.items()} for level in self.counts]
        return self

    def prob(self, context: tuple[int, ...], token: int) -> float:
        """p(token | the last order-1 tokens of context)."""
        p = 1.0 / self.vocab_size
        for k in range(1, self.order + 1):
            ctx = context[len(context) - (k - 1) :] if k > 1 else ()
            total = self.totals[k].get(ctx)
            if total is None:  # an unseen context: the shorter one's estimate stands
                continue
            count, types = total
            p = max(self.counts[k][ctx][token] - self.d, 0.0) / count + self.d * types / count * p
        return p

    def sequence_nll(self, seq: list[int], start: int) -> float:
        """-log p (nats) of seq[start:], each token given the ones before it."""
        padded = [seq[0]] * (self.order - 1) + list(seq)
        shift = self.order - 1
        return -sum(
            math.log(self.prob(tuple(padded[i + shift - self.order + 1 : i + shift]), padded[i + shift]))
            for i in range(start, len(seq))
        )
