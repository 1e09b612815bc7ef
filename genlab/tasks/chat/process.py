"""The chat process: a conversation -> token ids with a loss mask on the assistant's turns, the masked loss,
and the answers of many conversations decoded together (the server's continuous-batching engine)."""

from __future__ import annotations

from collections.abc import Sequence as Seq

import torch
import torch.nn.functional as F

from genlab.errors import GenlabError
from genlab.io.chat_template import END, Message, TooLong, assistant_spans, render
from genlab.io.tokenizers import EOS, BPETokenizer
from genlab.models.batching import ContinuousBatch, Sequence
from genlab.models.transformer import Transformer
from genlab.tasks.chat.recipe import ChatDecodingConfig

IGNORE_INDEX = -100  # labels cross-entropy skips: every token the assistant did not write


def encode_conversation(tokenizer: BPETokenizer, messages: Seq[Message]) -> tuple[list[int], list[int]]:
    """(ids, labels) of a whole conversation: labels are the ids on the assistant's content and its
    end-of-turn marker, IGNORE_INDEX everywhere else (role markers, user and system turns)."""
    text, spans = assistant_spans(messages)
    encoding = tokenizer.tok.encode(text)
    labels = [
        token if any(start < stop and end > begin for begin, stop in spans) else IGNORE_INDEX
        for token, (start, end) in zip(encoding.ids, encoding.offsets)
    ]
    return encoding.ids, labels


def batch(rows: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and labels (B, T): a causal model needs no attention mask for right padding."""
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for r, (row_ids, row_labels) in enumerate(rows):
        ids[r, : len(row_ids)] = torch.tensor(row_ids)
        labels[r, : len(row_labels)] = torch.tensor(row_labels)
    return ids, labels


def assistant_loss(model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy on the assistant's tokens only: position t predicts labels[t + 1]."""
    logits = model(ids).logits[:, :-1]  # (B, T-1, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)


def stop_ids(tokenizer: BPETokenizer) -> frozenset[int]:
    """The ids that end an assistant's turn: the end-of-turn marker (and <eos>, never trained, as a guard)."""
    ids = {tokenizer.token_id(END), tokenizer.token_id(EOS)}
    if tokenizer.token_id(END) is None:
        raise GenlabError(f"the tokenizer has no {END} marker: not a chat model's tokenizer")
    return frozenset(i for i in ids if i is not None)


def prompt_ids(tokenizer: BPETokenizer, messages: Seq[Message], block_size: int) -> list[int]:
    """The ids of a conversation that asks for the assistant's next turn; one line if it overflows the context."""
    ids = tokenizer.encode(render(messages))
    if len(ids) >= block_size:
        raise TooLong(f"the conversation is {len(ids)} tokens; the model's context is {block_size}")
    return ids


@torch.no_grad()
def answer_all(
    model: Transformer,
    prompts: list[list[int]],
    max_new_tokens: int,
    stops: frozenset[int],
    rows: int,
    decoding: ChatDecodingConfig,
) -> list[Sequence]:
    """Greedy answers (with `decoding`'s penalties) to many prompts of any lengths, `rows` decoded together: the
    finished sequences, in order (`tokens` ends with a stop id when the turn ended, `finish_reason` is "stop" or
    "length")."""
    engine = ContinuousBatch(model, rows)
    block = model.config.block_size
    sequences = [
        Sequence(
            p,
            max(1, min(max_new_tokens, block - len(p))),
            0.0,
            stop_ids=stops,
            presence_penalty=decoding.presence_penalty,
            frequency_penalty=decoding.frequency_penalty,
        )
        for p in prompts
    ]
    waiting = list(reversed(sequences))
    while waiting or len(engine):
        while waiting and len(engine) < rows:
            engine.add(waiting.pop())
        engine.step()
    return sequences
