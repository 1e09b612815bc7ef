"""Continuous batching: many sequences of one causal transformer share each decoding step.

Each sequence has its own prompt, sampling settings, seed and length limit. A new sequence is
prefilled alone (its prompt in one forward pass, which also picks its first token) and then joins
the batch; every step after that is one forward pass over one new token per active sequence. A
sequence that ends leaves the batch at once, so a newcomer never waits for the longest one.

The rows of the batch are left-padded to one cache length: row i's real tokens are the last
`lengths[i]` columns of the cache, the mask hides the padding, and `position_ids` count positions
from each row's own first token, so each row computes what it would compute alone. A row whose
window fills the context is prefilled again from its last `block_size` tokens, exactly as
`generation.stream` slides its window, so batched and unbatched decoding pick the same tokens.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from genlab.models.generation import _check_args, sample_next
from genlab.models.transformer import KVCache, Transformer


@dataclass(eq=False)
class Sequence:
    """One completion being generated."""

    prompt: list[int]
    max_new_tokens: int
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    stop_ids: frozenset[int] = frozenset()
    seed: int | None = None
    tokens: list[int] = field(default_factory=list)  # generated so far
    finish_reason: str | None = None  # "stop" (a stop token, or the caller's stop string) or "length"

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None

    @property
    def done(self) -> bool:
        return self.finish_reason is not None


class ContinuousBatch:
    """The sequences being decoded together by one model; `step()` advances every one by a token."""

    def __init__(self, model: Transformer):
        self.model = model.eval()
        self.block = model.config.block_size
        self.waiting: list[Sequence] = []  # to prefill at the next step
        self.rows: list[Sequence] = []  # decoding, in cache-row order
        self.cache: KVCache | None = None  # per layer (keys, values), each (B, nh, L, hd)
        self.mask = torch.zeros(0, 0, dtype=torch.bool)  # (B, L): True on each row's real tokens
        self.lengths = torch.zeros(0, dtype=torch.long)  # (B,) real tokens per row (= next position)

    def __len__(self) -> int:
        return len(self.waiting) + len(self.rows)

    def add(self, seq: Sequence) -> None:
        """Queue a sequence: it is prefilled, and gives its first token, at the next step."""
        _check_args(self.model, torch.tensor([seq.prompt]), seq.temperature, seq.top_k, seq.top_p)
        if seq.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        self.waiting.append(seq)

    def remove(self, seq: Sequence) -> None:
        """Drop a sequence (its client went away): its row leaves the batch now."""
        if seq in self.waiting:
            self.waiting.remove(seq)
        elif seq in self.rows:
            self._keep([row is not seq for row in self.rows])

    @torch.no_grad()
    def step(self) -> list[tuple[Sequence, int]]:
        """Advance every sequence by one token: -> (sequence, new token id) for each, in no set order.

        Sequences that finish in this step are out of the batch when it returns (`seq.done`).
        """
        emitted: list[tuple[Sequence, int]] = []
        if self.rows:  # rows whose window is full start again from their last block_size tokens
            full = [int(n) >= self.block for n in self.lengths]
            self.waiting = [row for row, f in zip(self.rows, full) if f] + self.waiting
            self._keep([not f for f in full])
        if self.rows:
            emitted += self._decode()
        for seq in self.waiting:
            emitted.append((seq, self._prefill(seq)))
        self.waiting = []
        finished = [seq for seq, _ in emitted if seq.done]
        if finished:
            self._keep([not row.done for row in self.rows])
        return emitted

    def _decode(self) -> list[tuple[Sequence, int]]:
        """One forward pass over the newest token of every row."""
        last = torch.tensor([[row.tokens[-1]] for row in self.rows])  # (B, 1)
        self.mask = torch.cat([self.mask, torch.ones(len(self.rows), 1, dtype=torch.bool)], dim=1)  # (B, L + 1)
        out = self.model(last, attention_mask=self.mask, kv_cache=self.cache, use_cache=True,
                         position_ids=self.lengths[:, None])
        self.cache, self.lengths = out.kv_cache, self.lengths + 1
        logits = out.logits[:, -1, :]  # (B, V)
        return [(row, self._sample(row, logits[i:i + 1])) for i, row in enumerate(self.rows)]

    def _prefill(self, seq: Sequence) -> int:
        """The prompt (or, past the context, the last block_size tokens) alone; its cache joins the batch."""
        window = (seq.prompt + seq.tokens)[-self.block:]
        out = self.model(torch.tensor([window]), use_cache=True)  # cache: (1, nh, len(window), hd)
        token = self._sample(seq, out.logits[:, -1, :])
        if not seq.done:
            self._join(seq, out.kv_cache, len(window))
        return token

    def _sample(self, seq: Sequence, logits: torch.Tensor) -> int:
        token = int(sample_next(logits, seq.temperature, seq.top_k, seq.top_p, seq.generator)[0])
        seq.tokens.append(token)
        if token in seq.stop_ids:
            seq.finish_reason = "stop"
        elif len(seq.tokens) >= seq.max_new_tokens:
            seq.finish_reason = "length"
        return token

    def _join(self, seq: Sequence, cache: KVCache, length: int) -> None:
        """Append a row, left-padding whichever side is shorter so that all rows share one length."""
        width = self.mask.size(1)
        if self.cache is None:
            self.cache, self.mask = cache, torch.ones(1, length, dtype=torch.bool)
        else:
            grow = max(length, width)
            self.cache = [(torch.cat([_left_pad(k, grow), _left_pad(nk, grow)]),
                           torch.cat([_left_pad(v, grow), _left_pad(nv, grow)]))
                          for (k, v), (nk, nv) in zip(self.cache, cache)]
            row_mask = torch.ones(1, length, dtype=torch.bool)
            self.mask = torch.cat([_left_pad(self.mask, grow), _left_pad(row_mask, grow)])
        self.rows.append(seq)
        self.lengths = torch.cat([self.lengths, torch.tensor([length])])

    def _keep(self, keep: list[bool]) -> None:
        """Keep the rows marked True, then drop the leading columns that are padding in every row."""
        if all(keep):
            return
        self.rows = [row for row, k in zip(self.rows, keep) if k]
        if not self.rows:
            self.cache, self.mask = None, torch.zeros(0, 0, dtype=torch.bool)
            self.lengths = torch.zeros(0, dtype=torch.long)
            return
        index = torch.tensor(keep).nonzero().squeeze(1)
        self.lengths = self.lengths[index]
        start = self.mask.size(1) - int(self.lengths.max())
        self.mask = self.mask[index, start:]
        self.cache = [(k[index, :, start:], v[index, :, start:]) for k, v in self.cache]


def _left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad the sequence axis of a cache (B, nh, L, hd) or a mask (B, L) on the left to `width`."""
    axis = 2 if t.dim() == 4 else 1
    missing = width - t.size(axis)
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[axis] = missing
    return torch.cat([t.new_zeros(shape), t], dim=axis)
