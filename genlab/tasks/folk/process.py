"""The folk-tune process: whole tunes as padded batches, the causal loss on them, NLL per note event, and
sampling tunes from a header (and the first bars of a prompt) through genlab's shared decoding loop."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genlab.data.folk_tokens import EOS, HEADER_LEN, IDS, NOTE_HEAD_IDS, PAD, decode, encode
from genlab.errors import GenlabError
from genlab.models.generation import generate
from genlab.models.transformer import Transformer

PAD_ID, EOS_ID = IDS[PAD], IDS[EOS]
NOTE_HEADS = torch.tensor(NOTE_HEAD_IDS)


def tune_tensor(tunes: list[list[str]], block: int) -> torch.Tensor:
    """Token lists -> ids (N, block): each tune cut to `block` tokens, padded with <pad> after its end."""
    out = torch.full((len(tunes), block), PAD_ID, dtype=torch.long)
    for row, tokens in enumerate(tunes):
        ids = encode(tokens[:block])
        out[row, : len(ids)] = torch.tensor(ids)
    return out


def draw_rows(lengths: torch.Tensor, batch: int, generator: torch.Generator, by_length: bool) -> torch.Tensor:
    """Indices of `batch` training tunes (lengths (N,) in tokens). by_length: tunes of similar length (drawn
    among the 4 x batch neighbours in length of a random tune), so a batch is cut to its longest tune with
    little padding: attention's cost grows with the square of that length. Otherwise uniformly at random."""
    if not by_length:
        return torch.randint(len(lengths), (batch,), generator=generator)
    order = torch.argsort(lengths, stable=True)  # (N,) shortest first
    window = min(4 * batch, len(lengths))
    start = int(torch.randint(len(lengths) - window + 1, (1,), generator=generator))
    return order[start : start + window][torch.randperm(window, generator=generator)[:batch]]


def token_nll(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """-log p of each next token: logits (B, T, V), ids (B, T) -> (B, T-1), 0 where the target is <pad>."""
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")  # (B, T-1)
    return nll * (ids[:, 1:] != PAD_ID)


def tune_loss(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the real (non-pad) targets of ids (B, T)."""
    real = (ids[:, 1:] != PAD_ID).sum().clamp_min(1)
    return token_nll(model(ids).logits, ids).sum() / real


def note_events(ids: torch.Tensor) -> torch.Tensor:
    """Note and rest events of each tune in ids (B, T): one per pitch or rest token -> (B,)."""
    return torch.isin(ids[:, HEADER_LEN:], NOTE_HEADS).sum(dim=1)


def body_nll(nll: torch.Tensor) -> torch.Tensor:
    """Summed -log p of each tune's body (every token after the header, <end> included): the header is the
    condition, given, not predicted. nll (B, T-1) from token_nll -> (B,)."""
    return nll[:, HEADER_LEN - 1 :].sum(dim=1)


@torch.inference_mode()
def nll_per_note(model: Transformer, ids: torch.Tensor, batch_size: int = 32) -> float:
    """Held-out -log p (nats) of the tunes' bodies divided by their note events: ids (N, T)."""
    total, notes = 0.0, 0
    was_training = model.training
    model.eval()
    for batch in ids.split(batch_size):
        out = model(batch)  # the transformer's output has .logits; the LSTM baseline returns logits
        total += body_nll(token_nll(getattr(out, "logits", out), batch)).sum().item()
        notes += int(note_events(batch).sum())
    model.train(was_training)
    return total / max(notes, 1)


def sample_tunes(
    model: Transformer,
    prefix: list[str],
    n: int,
    seed: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    max_tokens: int = 384,
) -> list[list[str]]:
    """n tunes continuing `prefix` (a header, then maybe the first bars of a prompt), each ending at its
    <end> or after max_tokens new tokens; the prefix is part of each returned tune. Past the context the
    shared decoder slides its window (genlab.models.generation): the header then drops out of sight."""
    block = model.config.block_size
    if len(prefix) >= block:
        raise GenlabError(f"the prompt takes {len(prefix)} tokens; the model reads at most {block}")
    idx = torch.tensor([encode(prefix)] * n)  # (n, P): the same prefix in every row
    out = generate(model, idx, max_tokens, temperature, top_k, None, stop=[EOS_ID], seed=seed)  # (n, P + new)
    tunes = []
    for row in out.tolist():
        tokens = decode(row)
        tunes.append(tokens[: tokens.index(EOS) + 1] if EOS in tokens[len(prefix) :] else tokens)
    return tunes
