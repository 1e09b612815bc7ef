"""Sampling from a causal transformer: temperature, top-k, top-p, presence/frequency penalties, stop tokens,
KV cache, batched.

`stream` yields one column of new token ids per step (for a live playground); `generate` collects
them; `TextPieces` turns the ids of one sequence into text as it grows, ending before a stop
string. With the cache (a preallocated KVBuffer, written in place) each step feeds only the newest token.
Once the sequence fills the context:
- a model with a position table cannot shift its cached keys (each holds its absolute position), so its
  window moves half a context at a time (`window_length`): the cache is rebuilt from the last
  `block_size // 2 + 1` tokens and then grows a token per step until full again — one prefill per
  `block_size // 2` tokens instead of one per token, and the no-cache path crops its input by the same rule;
- a rotary model rolls its cache instead (drops the oldest keys and values, keeps counting positions):
  each token attends to the last `block_size` tokens, which is what the no-cache path computes over the
  whole sequence with a sliding-window mask, and no step re-reads the context.
Either way both paths pick the same tokens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from genlab.errors import GenlabError
from genlab.io.tokenizers import Tokenizer
from genlab.models.decoding import OneTokenDecoder
from genlab.models.transformer import KVBuffer, Transformer

MAX_PENALTY = 2.0  # OpenAI's range for presence_penalty and frequency_penalty: [-2, 2]


def check_sampling_args(
    model: Transformer,
    idx: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    presence_penalty: float = 0.0,
    frequency_penalty: float = 0.0,
) -> None:
    if not model.config.causal:
        raise GenlabError("generation needs a causal (GPT) model; this one is bidirectional")
    if idx.dim() != 2 or idx.size(1) == 0:
        raise GenlabError("the prompt must be a non-empty batch of token ids, shape (B, T)")
    if idx.size(1) > model.config.block_size:
        raise GenlabError(
            f"prompt of {idx.size(1)} tokens is longer than the model's context ({model.config.block_size})"
        )
    if not math.isfinite(temperature) or temperature < 0:
        raise GenlabError(f"temperature must be a finite number >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise GenlabError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:  # also refuses NaN
        raise GenlabError(f"top_p must be in (0, 1], got {top_p}")
    for name, value in (("presence_penalty", presence_penalty), ("frequency_penalty", frequency_penalty)):
        if not -MAX_PENALTY <= value <= MAX_PENALTY:  # also refuses NaN
            raise GenlabError(f"{name} must be in [-{MAX_PENALTY:g}, {MAX_PENALTY:g}], got {value}")


def penalized(
    logits: torch.Tensor, counts: torch.Tensor, presence: float | torch.Tensor, frequency: float | torch.Tensor
) -> torch.Tensor:
    """OpenAI's penalties on logits (B, V): each token loses `frequency` per time it was generated so far
    (counts (B, V), the completion only, not the prompt) and `presence` once if it was generated at all.
    Positive values steer away from repeating; the penalties (floats, or (B, 1) per row) come before the
    temperature, so a greedy decoder feels them too."""
    return logits - counts * frequency - (counts > 0).to(logits.dtype) * presence


def check_finite(logits: torch.Tensor) -> None:
    # NaN would reach torch.multinomial: the weights are broken. One reduction per token (a NaN or an
    # infinity anywhere makes the sum non-finite) instead of an elementwise test and an all().
    if not math.isfinite(logits.sum()):
        raise GenlabError("the model produced non-finite scores (NaN or inf): its weights have diverged")


def tempered(logits: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """logits (B, V) / temperature (a float, or (B, 1) per row), each row shifted to a maximum of 0 first:
    the softmax is the same, and a temperature near 0 (5e-324 is a valid one) cannot overflow the largest
    logit to inf (inf - inf is NaN in the softmax); it sharpens towards greedy instead. Below the smallest
    normal float of the logits' type (5e-324 is 0 in float32, and 0 / 0 is NaN) it counts as that float."""
    tiny = torch.finfo(logits.dtype).tiny
    temperature = temperature.clamp_min(tiny) if isinstance(temperature, torch.Tensor) else max(temperature, tiny)
    return (logits - logits.amax(dim=-1, keepdim=True)) / temperature


def sample_finite(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """logits (B, V), checked finite, -> next ids (B,) drawn at a temperature > 0 (0 is greedy: argmax)."""
    logits = tempered(logits, temperature)
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens ranked above it already cover top_p (the first always stays).
        drop = probs.cumsum(dim=-1) - probs > top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)


def window_length(length: int, block: int) -> int:
    """How many of a sequence's last `length` tokens a model with a position table reads to predict the next one.

    Up to the context, all of them. Past it the window restarts every `block // 2` tokens: it holds the last
    `block - block // 2 + 1` tokens after a restart and grows by one per token until it is full again. Why not slide
    a token at a time: every cached key would change with its position, so each token would re-read the whole
    window (a prefill of `block` tokens per token: 4-5x a cached step on the char GPT); restarting every half
    context costs one prefill per `block // 2` tokens, and every token still sees at least half a context.
    """
    if length <= block:
        return length
    every = max(block // 2, 1)
    return block - every + 1 + (length - block - 1) % every


def _next_logits(
    model: Transformer,
    seq: torch.Tensor,
    cache: KVBuffer | None,
    block: int,
    rolling: bool,
    decoder: OneTokenDecoder | None,
) -> torch.Tensor:
    """Scores (B, V) of the token after seq (B, L), feeding the model only what the cache lacks
    (one token at a time through `decoder` where there is one)."""
    window = seq.size(1) if rolling else window_length(seq.size(1), block)
    if cache is None:  # the window; a rotary model reads it all through a sliding-window mask
        return model(seq[:, -window:]).logits[:, -1]
    if cache.width == block and rolling:  # full: forget the oldest column, positions keep counting
        cache.drop_oldest()
    elif cache.width == block:  # a position table: start again from the window's tokens
        cache.width = 0
    new = seq[:, -window:] if cache.width == 0 else seq[:, -1:]  # (B, T)
    positions = None
    if rolling:  # absolute positions: past the context they run ahead of the cache's width
        positions = torch.arange(seq.size(1) - new.size(1), seq.size(1), device=seq.device).expand(len(seq), -1)
    if decoder is not None and new.size(1) == 1:
        return decoder(new, cache, positions)
    return model(new, kv_cache=cache, use_cache=True, position_ids=positions).logits[:, -1]


@torch.inference_mode()
def stream(
    model: Transformer,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop: Iterable[int] | None = None,
    seed: int | None = None,
    use_cache: bool = True,
    presence_penalty: float = 0.0,
    frequency_penalty: float = 0.0,
) -> Iterator[torch.Tensor]:
    """Yield the next token ids (B,) for up to max_new_tokens steps after the prompt idx (B, T).

    Stops early once every row has produced a token in `stop`; a finished row keeps repeating its
    stop token, so the batch stays rectangular.
    """
    check_sampling_args(model, idx, temperature, top_k, top_p, presence_penalty, frequency_penalty)
    block, rolling = model.config.block_size, model.config.positions == "rotary"
    stop_ids = torch.tensor(sorted(set(stop or ())), dtype=torch.long, device=idx.device)
    generator = torch.Generator(device=idx.device).manual_seed(seed) if seed is not None else None
    cache = None
    if use_cache:  # keys and values written in place, one column per token
        cache = KVBuffer(model.config, idx.size(0), device=idx.device, dtype=model.tok_emb.weight.dtype)
    was_training = model.training
    model.eval()
    decoder = OneTokenDecoder.of(model) if use_cache else None
    counts = None  # (B, V): how often each row generated each token; only kept when a penalty needs it
    if presence_penalty or frequency_penalty:
        counts = torch.zeros(idx.size(0), model.config.vocab_size, device=idx.device)
    try:
        seq = idx
        finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            logits = _next_logits(model, seq, cache, block, rolling, decoder)
            if counts is not None:
                logits = penalized(logits, counts, presence_penalty, frequency_penalty)
            check_finite(logits)
            greedy = temperature == 0
            nxt = logits.argmax(-1) if greedy else sample_finite(logits, temperature, top_k, top_p, generator)  # (B,)
            if stop_ids.numel():
                nxt = torch.where(finished, seq[:, -1], nxt)
                finished |= torch.isin(nxt, stop_ids)
            if counts is not None:
                counts[torch.arange(len(nxt)), nxt] += 1
            seq = torch.cat([seq, nxt[:, None]], dim=1)
            yield nxt
            if stop_ids.numel() and finished.all():
                return
    finally:
        model.train(was_training)


def generate(model: Transformer, idx: torch.Tensor, max_new_tokens: int, *args: Any, **kwargs: Any) -> torch.Tensor:
    """The prompt followed by the generated tokens: (B, T + n) with n <= max_new_tokens; every other
    argument is `stream`'s (sampling settings, stop tokens, seed, cache)."""
    new = list(stream(model, idx, max_new_tokens, *args, **kwargs))
    return torch.cat([idx, torch.stack(new, dim=1)], dim=1) if new else idx


class TextPieces:
    """The text of a growing sequence of generated ids, given out piece by piece.

    `add(id)` returns the text that is now settled: it holds back an ending that could still grow into
    one of the `stop` strings (and half a UTF-8 character) until the next ids decide. Once a stop string
    appears, the text before it is the last piece and `stopped` is True.

    Decoding is incremental (as vLLM's detokenizer): each new id is decoded together with the ids of the last
    settled piece only — their text and the id's are what can join across a token boundary (byte-level BPE,
    UTF-8) — so a token costs the same at position 2,000 as at position 2, not a decode of everything so far.
    """

    def __init__(self, tokenizer: Tokenizer, stop: Iterable[str] = ()):
        self.tokenizer, self.stop = tokenizer, [s for s in stop if s]
        self.longest = max(map(len, self.stop), default=0)
        self.ids: list[int] = []
        self.settled = ""  # the text of ids[:read]
        self.context = 0  # ids[context:read]: the last settled piece, decoded again before each new id
        self.read = 0
        self.shown = 0  # characters of the text already given out
        self.stopped = False

    def _text(self) -> str:
        """The text of all ids so far: the settled text and what the ids after it add."""
        before = self.tokenizer.decode(self.ids[self.context : self.read])
        after = self.tokenizer.decode(self.ids[self.context :])
        tail = after[len(before) :]
        if tail and not after.endswith("\ufffd"):  # a whole character more: settle it
            self.settled += tail
            self.context, self.read = self.read, len(self.ids)
            return self.settled
        return self.settled + tail

    def add(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self._text()
        search_from = max(0, self.shown - self.longest)  # an earlier stop string would have been found before
        hits = [i for i in (text.find(s, search_from) for s in self.stop) if i >= 0]
        if hits:
            self.stopped = True
            return self._give(text, min(hits))
        ready = len(text) - self._could_start_a_stop(text)
        if text.endswith("\ufffd"):
            ready = min(ready, len(text) - 1)
        return self._give(text, ready)

    def _could_start_a_stop(self, text: str) -> int:
        """The length of the longest ending of `text` that begins a stop string."""
        return max((k for stop in self.stop for k in range(1, len(stop)) if text.endswith(stop[:k])), default=0)

    def finish(self) -> str:
        """What was held back, once the sequence has ended without a stop string."""
        return "" if self.stopped else self._give(self._text(), None)

    def _give(self, text: str, end: int | None) -> str:
        end = len(text) if end is None else end
        if end <= self.shown:
            return ""
        piece, self.shown = text[self.shown : end], end
        return piece


def text_pieces(
    tokenizer: Tokenizer, tokens: Iterable[int], stop: str | None = None, stop_ids: Iterable[int] = ()
) -> Iterator[str]:
    """The text of generated `tokens` (one row's ids, as `stream` makes them) piece by piece, as TextPieces
    settles it: ending at the first id in `stop_ids` (not shown) or before the `stop` string."""
    ends = frozenset(stop_ids)
    pieces = TextPieces(tokenizer, [stop] if stop else [])
    for token in tokens:
        if token in ends:
            break
        piece = pieces.add(token)
        if piece:
            yield piece
        if pieces.stopped:
            return
    piece = pieces.finish()
    if piece:
        yield piece
