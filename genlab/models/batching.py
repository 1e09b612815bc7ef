"""Continuous batching: many sequences of one causal transformer share each decoding step.

Each sequence has its own prompt, sampling settings, seed and length limit. A new sequence is
prefilled alone (its prompt in one forward pass, which also picks its first token) and then joins
the batch; every step after that is one forward pass over one new token per active sequence. A
sequence that ends leaves the batch at once, so a newcomer never waits for the longest one.

The rows of the batch are left-padded to one cache length: row i's real tokens are the last
`lengths[i]` columns of the cache, the mask hides the padding, and `position_ids` count positions
from each row's own first token, so each row computes what it would compute alone. The cache is a
preallocated KVBuffer that each step writes one column of in place (no copy per token). A row whose
window fills the context is prefilled again from the last tokens `generation.window_length` says (half a
context and one), exactly as `generation.stream` moves its window; a rotary model's row rolls instead (its
oldest token is masked out and its positions keep counting, as stream's rolling cache does), so batched and
unbatched decoding pick the same tokens. A rotary batch's buffer holds two contexts of columns, so the
columns its rows have rolled past are dropped (one copy of the buffer) once per context, not at every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from genlab.models.decoding import OneTokenDecoder
from genlab.models.generation import (
    check_finite,
    check_sampling_args,
    penalized,
    sample_finite,
    tempered,
    window_length,
)
from genlab.models.transformer import KVBuffer, Transformer


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
    presence_penalty: float = 0.0  # OpenAI's penalties on tokens generated so far (generation.penalized)
    frequency_penalty: float = 0.0
    tokens: list[int] = field(default_factory=list)  # generated so far
    finish_reason: str | None = None  # "stop" (a stop token, or the caller's stop string) or "length"

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        self.counts: torch.Tensor | None = None  # (V,) times each token was generated; set by the batch if penalised

    @property
    def penalised(self) -> bool:
        return bool(self.presence_penalty or self.frequency_penalty)

    def penalize(self, logits: torch.Tensor) -> torch.Tensor:
        """This sequence's logits (1, V) after its penalties."""
        return penalized(logits, self.counts, self.presence_penalty, self.frequency_penalty)

    @property
    def done(self) -> bool:
        return self.finish_reason is not None


class ContinuousBatch:
    """The sequences being decoded together by one model; `step()` advances every one by a token."""

    def __init__(self, model: Transformer, capacity_rows: int = 16):
        self.model = model.eval()
        self.block = model.config.block_size
        self.waiting: list[Sequence] = []  # to prefill at the next step
        self.rows: list[Sequence] = []  # decoding, in cache-row order
        self.rolling = model.config.positions == "rotary"
        # rows: the decoding sequences; width: L. Rolled-past columns stay until a rotary buffer's second context fills.
        self.capacity = 2 * self.block if self.rolling else self.block
        self.cache = KVBuffer(model.config, capacity_rows, self.capacity, rows=0)
        self.mask = torch.zeros(0, 0, dtype=torch.bool)  # (B, L): True on each row's real tokens
        self.lengths: list[int] = []  # real tokens per row that the next token sees
        self.positions: list[int] = []  # each row's next position (= its length, until a rotary row rolls)
        self.decoder = OneTokenDecoder.of(self.model)  # None: each step through the module forward

    def __len__(self) -> int:
        return len(self.waiting) + len(self.rows)

    def add(self, seq: Sequence) -> None:
        """Queue a sequence: it is prefilled, and gives its first token, at the next step."""
        check_sampling_args(
            self.model,
            torch.tensor([seq.prompt]),
            seq.temperature,
            seq.top_k,
            seq.top_p,
            seq.presence_penalty,
            seq.frequency_penalty,
        )
        if seq.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if seq.penalised and seq.counts is None:
            seq.counts = torch.zeros(self.model.config.vocab_size)
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
        if self.rows and self.rolling:  # full rows forget their oldest token
            self._roll()
        elif self.rows:  # rows whose window is full start again from their last block_size tokens
            full = [n >= self.block for n in self.lengths]
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
        """One forward pass over the newest token of every row, written into the buffer in place."""
        last = torch.tensor([[row.tokens[-1]] for row in self.rows])  # (B, 1)
        self.mask = torch.cat([self.mask, torch.ones(len(self.rows), 1, dtype=torch.bool)], dim=1)  # (B, L + 1)
        positions = torch.tensor(self.positions)[:, None]  # (B, 1)
        if self.decoder is not None:
            logits = self.decoder(last, self.cache, positions, self.mask[:, None, None, :])
        else:
            logits = self.model(
                last, attention_mask=self.mask, kv_cache=self.cache, use_cache=True, position_ids=positions
            ).logits[:, -1, :]  # (B, V)
        self.lengths = [n + 1 for n in self.lengths]
        self.positions = [n + 1 for n in self.positions]
        return list(zip(self.rows, self._sample_rows(logits)))

    def _sample_rows(self, logits: torch.Tensor) -> list[int]:
        """The next token of every row from logits (B, V): greedy rows in one argmax, rows that sample
        from the whole distribution in one softmax, each drawing with its own generator."""
        check_finite(logits)
        penalised = [i for i, row in enumerate(self.rows) if row.penalised]
        if penalised:  # those rows (P, V) replaced by their penalised scores
            logits = logits.index_put(
                (torch.tensor(penalised),), torch.cat([self.rows[i].penalize(logits[i : i + 1]) for i in penalised])
            )
        greedy = any(row.temperature == 0 for row in self.rows)
        tokens = logits.argmax(dim=-1).tolist() if greedy else [0] * len(self.rows)
        plain = [
            i for i, row in enumerate(self.rows) if row.temperature > 0 and row.top_k is None and row.top_p is None
        ]
        if plain:
            temperatures = torch.tensor([[self.rows[i].temperature] for i in plain])  # (P, 1)
            rows = logits if len(plain) == len(self.rows) else logits[plain]
            probs = tempered(rows, temperatures).softmax(dim=-1)  # (P, V)
            # torch.multinomial's own one-sample path, split: each row's exponential noise from its own
            # generator, then one division and one argmax for all rows (a multinomial call per row cost
            # ~4x the noise it draws). Same draws, same generator states: stream's multinomial agrees.
            noise = torch.empty_like(probs)  # (P, V)
            for j, i in enumerate(plain):
                noise[j].exponential_(1, generator=self.rows[i].generator)
            for i, token in zip(plain, (probs / noise).argmax(dim=-1).tolist()):
                tokens[i] = token
        for i, row in enumerate(self.rows):
            if row.temperature > 0 and i not in plain:  # top-k / top-p rows
                tokens[i] = self._draw(row, logits[i : i + 1])
        return [self._take(row, token) for row, token in zip(self.rows, tokens)]

    def _prefill(self, seq: Sequence) -> int:
        """The prompt (or, past the context, the window's last tokens) alone; its cache joins the batch."""
        text = seq.prompt + seq.tokens
        window = text[-window_length(len(text), self.block) :]
        out = self.model(torch.tensor([window]), use_cache=True)  # cache: one row, len(window) columns
        logits = out.logits[:, -1, :]
        check_finite(logits)
        if seq.penalised:  # a sequence prefilled again past the context has generated tokens already
            logits = seq.penalize(logits)
        token = self._take(seq, int(logits.argmax()) if seq.temperature == 0 else self._draw(seq, logits))
        if not seq.done:
            self._join(seq, out.kv_cache, len(window))
        return token

    @staticmethod
    def _draw(seq: Sequence, logits: torch.Tensor) -> int:
        return int(sample_finite(logits, seq.temperature, seq.top_k, seq.top_p, seq.generator)[0])

    @staticmethod
    def _take(seq: Sequence, token: int) -> int:
        seq.tokens.append(token)
        if seq.counts is not None:
            seq.counts[token] += 1
        if token in seq.stop_ids:
            seq.finish_reason = "stop"
        elif len(seq.tokens) >= seq.max_new_tokens:
            seq.finish_reason = "length"
        return token

    def _join(self, seq: Sequence, cache: KVBuffer, length: int) -> None:
        """Copy a prefilled sequence's keys and values into a new row, right-aligned with the others;
        if it is longer than them, the others move right (their left padding grows)."""
        row = len(self.rows)
        if row == self.cache.shape[0]:
            self._grow_rows()
        buffer, width = self.cache, self.cache.width  # (the grown buffer, if it grew)
        if length > width:
            shift = length - width
            for kv in buffer.kv:  # (2, rows, nh, capacity, hd): a layer's keys and values
                kv[:, :row, :, shift:length] = kv[:, :row, :, :width].clone()
            self.mask = _left_pad(self.mask, length)
            width = buffer.width = length
        for kv, joining in zip(buffer.kv, cache.kv):  # (2, rows, nh, capacity, hd): a layer's keys and values
            kv[:, row, :, width - length : width] = joining[:, 0, :, :length]
        row_mask = torch.zeros(1, width, dtype=torch.bool)
        row_mask[0, width - length :] = True
        self.mask = torch.cat([self.mask.view(row, width), row_mask])
        self.rows.append(seq)
        buffer.rows = row + 1
        self.lengths.append(length)
        self.positions.append(length)

    def _grow_rows(self) -> None:
        """More sequences than the buffer was made for: double its rows (the caller caps them)."""
        old = self.cache
        self.cache = KVBuffer(self.model.config, 2 * old.shape[0], self.capacity, rows=old.rows)
        for new, kept in zip(self.cache.kv, old.kv):  # (2, rows, nh, capacity, hd)
            new[:, : old.rows, :, : old.width] = kept[:, : old.rows, :, : old.width]
        self.cache.width = old.width

    def _roll(self) -> None:
        """Rotary rows that fill the context hide their oldest token (mask it out, (B, L)); once the buffer is
        full, the columns that are padding in every row leave it (at least half of it), so the next token fits."""
        width = self.cache.width
        for i in (i for i, n in enumerate(self.lengths) if n >= self.block):
            self.mask[i, width - self.lengths[i]] = False
            self.lengths[i] -= 1
        if width == self.capacity:
            self._keep([True] * len(self.rows), trim=True)

    def _keep(self, keep: list[bool], trim: bool = False) -> None:
        """Keep the rows marked True (moved to the front of the buffer), then drop the leading columns
        that are padding in every row (when a row left, or `trim`)."""
        if all(keep) and not trim:
            return
        buffer = self.cache
        self.rows = [row for row, k in zip(self.rows, keep) if k]
        index = torch.tensor(keep).nonzero().squeeze(1)
        self.lengths = [n for n, k in zip(self.lengths, keep) if k]
        self.positions = [n for n, k in zip(self.positions, keep) if k]
        start = buffer.width - max(self.lengths, default=0)
        self.mask = self.mask[index, start:]
        for kv in buffer.kv:  # (2, rows, nh, capacity, hd)
            kv[:, : len(index), :, : buffer.width - start] = kv[:, index, :, start : buffer.width]
        buffer.rows, buffer.width = len(self.rows), buffer.width - start


def _left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad the sequence axis of a mask (B, L) on the left to `width`."""
    missing = width - t.size(1)
    return t if missing == 0 else torch.cat([t.new_zeros(t.size(0), missing), t], dim=1)
