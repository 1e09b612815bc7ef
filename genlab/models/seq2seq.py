"""An encoder-decoder transformer (Vaswani et al. 2017, pre-LayerNorm) built from the shared blocks.

The encoder is a stack of the bidirectional `Block`s of genlab.models.transformer; the decoder adds a
cross-attention sub-layer to each block (self-attention -> cross-attention -> MLP, each pre-normed and
residual). Source and target share one vocabulary, so one embedding table serves the encoder input, the
decoder input and (tied) the output head — what a shared EN/ES BPE vocabulary makes possible.

Decoding (greedy and beam search) lives here too: it needs nothing but the model. The losses are the
task's (genlab/tasks/translation/process.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError
from genlab.models.transformer import MLP, Block, SelfAttention, TransformerConfig, gpt2_init


@dataclass
class Seq2SeqConfig:
    vocab_size: int = 1024  # the shared source/target vocabulary
    block_size: int = 160  # longest source and longest target (each has its own position table)
    n_enc_layer: int = 3
    n_dec_layer: int = 3
    n_head: int = 4
    n_embd: int = 192
    dropout: float = 0.1
    pad_id: int = 0
    bos_id: int = 2  # starts every target
    eos_id: int = 3  # ends every target

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise GenlabError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if min(self.vocab_size, self.block_size, self.n_enc_layer, self.n_dec_layer, self.n_head) < 1:
            raise GenlabError("vocab_size, block_size, n_enc_layer, n_dec_layer and n_head must be >= 1")

    def blocks(self, causal: bool) -> TransformerConfig:
        """The shared blocks' config for the encoder (bidirectional) or the decoder (causal)."""
        return TransformerConfig(
            vocab_size=self.vocab_size,
            block_size=self.block_size,
            n_layer=self.n_dec_layer if causal else self.n_enc_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            dropout=self.dropout,
            causal=causal,
            activation="gelu",
        )


class CrossAttention(nn.Module):
    """Queries from the decoder stream, keys and values from the encoder's output."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.q = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.kv = nn.Linear(cfg.n_embd, 2 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def keys_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """memory (B, S, C) -> keys, values (B, nh, S, hd): computed once per source when decoding."""
        B, S, C = memory.shape
        k, v = self.kv(memory).view(B, S, 2, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4).unbind(0)
        return k, v

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, C), memory (B, S, C), memory_mask (B, 1, 1, S) True = a real source token -> (B, T, C)."""
        return self.attend(x, *self.keys_values(memory), memory_mask)

    def attend(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) against the source's keys and values (B, nh, S, hd) -> (B, T, C)."""
        B, T, C = x.shape
        q = self.q(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hd)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=memory_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, nh, T, hd)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class DecoderBlock(nn.Module):
    """The shared block's self-attention and MLP with cross-attention between them."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(cfg.n_embd), SelfAttention(cfg)
        self.ln_cross, self.cross = nn.LayerNorm(cfg.n_embd), CrossAttention(cfg)
        self.ln2, self.mlp = nn.LayerNorm(cfg.n_embd), MLP(cfg)
        self.dropout = cfg.dropout

    def drop(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.dropout, training=True) if self.dropout and self.training else x

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        # causal self-attention: right padding of the targets only follows real tokens, so no mask is needed
        x = x + self.drop(self.attn(self.ln1(x), None, True, None))
        x = x + self.drop(self.cross(self.ln_cross(x), memory, memory_mask))
        return x + self.drop(self.mlp(self.ln2(x)))

    def step(self, x: torch.Tensor, source_kv: tuple, memory_mask: torch.Tensor, past: tuple | None) -> tuple:
        """Decoding one token (eval mode): x (B, 1, C) -> (B, 1, C) and this layer's self-attention keys and
        values so far, (B, nh, t, hd) each, extended by the new token's (the one new query sees them all)."""
        h = self.ln1(x)
        B, T, C = h.shape
        q, k, v = (
            self.attn.qkv(h).view(B, T, 3, self.attn.n_head, C // self.attn.n_head).permute(2, 0, 3, 1, 4).unbind(0)
        )
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, nh, 1, hd)
        x = x + self.attn.proj(y.transpose(1, 2).reshape(B, T, C))
        x = x + self.cross.attend(self.ln_cross(x), *source_kv, memory_mask)
        return x + self.mlp(self.ln2(x)), (k, v)


class Seq2Seq(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.config = cfg
        enc, dec = cfg.blocks(causal=False), cfg.blocks(causal=True)
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)  # shared by both sides and the head
        self.enc_pos = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.dec_pos = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.encoder = nn.ModuleList(Block(enc) for _ in range(cfg.n_enc_layer))
        self.decoder = nn.ModuleList(DecoderBlock(dec) for _ in range(cfg.n_dec_layer))
        self.ln_enc, self.ln_dec = nn.LayerNorm(cfg.n_embd), nn.LayerNorm(cfg.n_embd)
        self.apply(gpt2_init)
        depth = cfg.n_enc_layer + cfg.n_dec_layer
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # GPT-2: residual projections scaled by depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * depth))

    def _embed(self, ids: torch.Tensor, positions: nn.Embedding) -> torch.Tensor:
        if ids.size(1) > self.config.block_size:
            raise GenlabError(f"a sequence of {ids.size(1)} tokens is longer than the model's {self.config.block_size}")
        x = self.tok_emb(ids) + positions(torch.arange(ids.size(1), device=ids.device))  # (B, T, C)
        return F.dropout(x, self.config.dropout, training=True) if self.config.dropout and self.training else x

    def source_mask(self, src: torch.Tensor) -> torch.Tensor:
        """src (B, S) -> (B, 1, 1, S): True where a real (non-padding) token is."""
        return (src != self.config.pad_id)[:, None, None, :]

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """src (B, S) right-padded ids -> memory (B, S, C)."""
        x, mask = self._embed(src, self.enc_pos), self.source_mask(src)
        for block in self.encoder:
            x = block(x, mask, False, None)
        return self.ln_enc(x)

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        """tgt (B, T) ids starting with <bos> -> next-token logits (B, T, V)."""
        x = self._embed(tgt, self.dec_pos)
        for block in self.decoder:
            x = block(x, memory, memory_mask)
        return self.ln_dec(x) @ self.tok_emb.weight.T

    def source_keys_values(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each decoder layer's cross-attention keys and values of the encoded source, (B, nh, S, hd) each."""
        return [block.cross.keys_values(memory) for block in self.decoder]

    def step(
        self, token: torch.Tensor, position: int, source_kv: list, memory_mask: torch.Tensor, cache: list | None
    ) -> tuple[torch.Tensor, list]:
        """One decoding step with a cache of the decoder's self-attention keys/values: token (B, 1) at
        `position` -> next-token logits (B, V) and the extended cache (what `decode` computes, without
        recomputing the prefix)."""
        x = self.tok_emb(token) + self.dec_pos.weight[position]  # (B, 1, C)
        cache = cache or [None] * len(self.decoder)
        new_cache = []
        for block, kv, past in zip(self.decoder, source_kv, cache):
            x, layer_cache = block.step(x, kv, memory_mask, past)
            new_cache.append(layer_cache)
        return self.ln_dec(x[:, -1]) @ self.tok_emb.weight.T, new_cache

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src (B, S), tgt (B, T) = <bos> + target -> logits (B, T, V)."""
        return self.decode(tgt, self.encode(src), self.source_mask(src))


def pad_rows(rows: list[list[int]], pad_id: int) -> torch.Tensor:
    """Ragged id lists -> (B, max length) right-padded with pad_id."""
    out = torch.full((len(rows), max(map(len, rows))), pad_id, dtype=torch.long)
    for r, row in enumerate(rows):
        out[r, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


@torch.no_grad()
def greedy(model: Seq2Seq, sources: list[list[int]], max_tokens: int) -> list[list[int]]:
    """The likeliest next token at each step, for a batch of sources -> each target's ids (no <bos>/<eos>)."""
    cfg = model.config
    src = pad_rows(sources, cfg.pad_id)
    mask = model.source_mask(src)
    source_kv, cache = model.source_keys_values(model.encode(src)), None
    tgt = torch.full((len(sources), 1), cfg.bos_id, dtype=torch.long)  # (B, 1)
    done = torch.zeros(len(sources), dtype=torch.bool)
    for position in range(min(max_tokens, cfg.block_size - 1)):
        logits, cache = model.step(tgt[:, -1:], position, source_kv, mask, cache)
        nxt = logits.argmax(-1)  # (B,)
        nxt = nxt.masked_fill(done, cfg.eos_id)
        tgt = torch.cat([tgt, nxt[:, None]], dim=1)
        done |= nxt == cfg.eos_id
        if done.all():
            break
    return [_strip(row, cfg.eos_id) for row in tgt[:, 1:].tolist()]


def _strip(row: list[int], eos_id: int) -> list[int]:
    return row[: row.index(eos_id)] if eos_id in row else row


# long: one search loop; splitting it would scatter the beam's state over several functions
@torch.no_grad()
def beam_search(
    model: Seq2Seq, source: list[int], beam: int, max_tokens: int, length_penalty: float = 1.0
) -> list[int]:
    """Beam search for one source: keep the `beam` likeliest prefixes; a prefix that ends in <eos> is a
    finished hypothesis scored by log p / length^length_penalty. The search stops once `beam` hypotheses
    have finished (or at max_tokens); beam 1 is exactly greedy decoding."""
    if beam < 1:
        raise GenlabError(f"beam must be >= 1, got {beam}")
    cfg = model.config
    src = torch.tensor([source], dtype=torch.long)
    mask = model.source_mask(src)  # (1, 1, 1, S)
    source_kv, cache = model.source_keys_values(model.encode(src)), None  # (1, nh, S, hd) each
    alive = torch.full((1, 1), cfg.bos_id, dtype=torch.long)  # (n, t) prefixes
    scores = torch.zeros(1)  # (n,) summed log-probabilities
    finished: list[tuple[float, list[int]]] = []
    for position in range(min(max_tokens, cfg.block_size - 1)):
        n = alive.size(0)
        kv = [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in source_kv]
        logits, cache = model.step(alive[:, -1:], position, kv, mask.expand(n, -1, -1, -1), cache)
        candidates = (scores[:, None] + logits.log_softmax(-1)).view(-1)  # (n * V,)
        top = candidates.topk(min(2 * beam, candidates.numel()))  # enough that `beam` continue unless all end
        rows, tokens, keep_scores = [], [], []
        for score, index in zip(top.values.tolist(), top.indices.tolist()):
            row, token = divmod(index, cfg.vocab_size)
            if token == cfg.eos_id:
                length = alive.size(1)  # the target's tokens plus <eos>
                finished.append((score / length**length_penalty, alive[row, 1:].tolist()))
            else:
                rows.append(row)
                tokens.append(token)
                keep_scores.append(score)
            if len(rows) == beam:
                break
        if len(finished) >= beam or not rows:
            break
        keep = torch.tensor(rows)  # each kept prefix's parent row: the cache follows it
        alive = torch.cat([alive[keep], torch.tensor(tokens)[:, None]], dim=1)
        scores = torch.tensor(keep_scores)
        cache = [(k[keep], v[keep]) for k, v in cache]
    if not finished:  # nothing ended within max_tokens: the likeliest unfinished prefix
        return alive[0, 1:].tolist()
    return max(finished, key=lambda f: f[0])[1]


class TranslationLogits(nn.Module):
    """(source ids, target prefix) -> next-token logits: the graph `genlab export` writes."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model

    def forward(self, source_ids: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
        return self.model(source_ids, target_ids)
