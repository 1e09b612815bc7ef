"""One transformer for both text models: causal (GPT) and bidirectional (BERT).

`causal=True` gives a GPT-2 shaped decoder (pre-LayerNorm, final LayerNorm, tied LM head).
`causal=False` gives a BERT-shaped encoder with a masked-LM head. `pre_ln=False` switches to the
post-LayerNorm layout of the original BERT, which is what pretrained BERT checkpoints need
(genlab/interop/hf.py loads them).

The modern small-GPT options (the NanoGPT speedrun's and Llama's), each off by default so that a default
config builds exactly the model it always did: rotary positions instead of a position table, RMSNorm,
QK-norm, a ReLU² or SwiGLU MLP, an untied LM head, zero-initialised output projections and a logit
soft-cap. Rotary + RMSNorm + SwiGLU without the others is the Llama layout (genlab/interop/hf.py exports it).

The model maps token ids to logits and hidden states; losses live in genlab/tasks/lm/process.py and
sampling in genlab/models/generation.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError

ACTIVATIONS = ("gelu", "gelu_new", "relu2", "swiglu")  # relu2: relu(x)^2; swiglu: silu(gate) * up
POSITIONS = ("learned", "rotary")
NORMS = ("layernorm", "rmsnorm")


@dataclass
class TransformerConfig:
    vocab_size: int = 256
    block_size: int = 128  # longest sequence the position table covers
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_inner: int | None = None  # MLP width; None means 4 * n_embd
    dropout: float = 0.0
    causal: bool = True  # GPT (True) or BERT (False)
    bias: bool = True
    pre_ln: bool = True  # False: original BERT post-LN blocks, embedding LayerNorm, no final LayerNorm
    layer_norm_eps: float = 1e-5
    type_vocab_size: int = 0  # BERT's segment embeddings; 0 means none
    activation: str = "gelu"  # "gelu" (exact erf, BERT), "gelu_new" (tanh approximation, GPT-2), relu2, swiglu
    positions: str = "learned"  # "learned" (a position table, GPT-2/BERT) or "rotary" (RoPE on queries and keys)
    rope_theta: float = 10000.0  # rotary base: the slowest pair turns once every ~2*pi*theta tokens
    norm: str = "layernorm"  # "layernorm" or "rmsnorm" (no mean subtraction, no bias)
    qk_norm: bool = False  # RMS-normalise each head's queries and keys: bounded attention logits
    tie_head: bool = True  # the LM head reads logits off the token embedding; False gives it its own matrix
    zero_init: bool = False  # output projections (and an untied head) start at zero: each block starts as identity
    logit_softcap: float = 0.0  # > 0: logits = cap * tanh(logits / cap); 0 = off

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise GenlabError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        for name, allowed in (("activation", ACTIVATIONS), ("positions", POSITIONS), ("norm", NORMS)):
            if getattr(self, name) not in allowed:
                raise GenlabError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        if self.positions == "rotary" and (self.n_embd // self.n_head) % 2:
            raise GenlabError(f"rotary positions need an even head size, got {self.n_embd // self.n_head}")
        if not (math.isfinite(self.rope_theta) and self.rope_theta > 1):
            raise GenlabError(f"rope_theta must be a finite number > 1, got {self.rope_theta}")
        if not (math.isfinite(self.logit_softcap) and self.logit_softcap >= 0):
            raise GenlabError(f"logit_softcap must be a finite number >= 0 (0 = off), got {self.logit_softcap}")
        if not self.causal and not self.tie_head:
            raise GenlabError("tie_head=false needs a causal model: the masked-LM head reads the tied embedding")
        if not self.pre_ln and (self.norm != "layernorm" or self.positions != "learned"):
            raise GenlabError("the post-LN (BERT) layout keeps LayerNorm and learned positions")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise GenlabError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise GenlabError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def inner(self) -> int:
        return self.n_inner or 4 * self.n_embd


class KVBuffer:
    """The keys and values of every layer, preallocated for up to `capacity_rows` sequences of up to `capacity`
    tokens: a forward pass writes its new keys and values in place after the `width` columns already filled
    (a cache that concatenates copies itself whole at every token). The first `rows` rows are in use (all of
    them unless told; continuous batching in genlab.models.batching fills them as sequences join).

    The model's forward makes one when asked `use_cache=True` without one, and extends the one it is given."""

    def __init__(
        self,
        cfg: TransformerConfig,
        capacity_rows: int,
        capacity: int | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        rows: int | None = None,
    ):
        self.config = cfg
        self.shape = (capacity_rows, cfg.n_head, capacity or cfg.block_size, cfg.n_embd // cfg.n_head)
        # Per layer one (2, rows, nh, capacity, hd) tensor, keys then values, so that a one-token decoding
        # step (genlab.models.decoding) reads both with one slice; keys and values are views of it.
        self.kv = [torch.zeros((2, *self.shape), device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.keys = [kv[0] for kv in self.kv]
        self.values = [kv[1] for kv in self.kv]
        self.layers = [LayerCache(self, i) for i in range(cfg.n_layer)]  # what each attention layer extends
        self.rows = capacity_rows if rows is None else rows
        self.width = 0

    def check_room(self, new: int) -> None:
        if self.width + new > self.shape[2]:
            raise GenlabError(f"sequence of {self.width + new} tokens is longer than the cache ({self.shape[2]})")

    def drop_oldest(self) -> None:
        """Forget the first filled column (a rotary model's rolling window: its positions keep counting)."""
        for kv in self.kv:  # (2, rows, nh, capacity, hd): a layer's keys and values
            kv[:, :, :, : self.width - 1] = kv[:, :, :, 1 : self.width].clone()
        self.width -= 1

    def repeated(self, rows: int) -> KVBuffer:
        """A new buffer whose `rows` rows each hold a copy of this one's first row (its filled columns):
        several continuations of one shared text, the text computed once."""
        first = self.kv[0]
        copy = KVBuffer(self.config, rows, self.shape[2], first.device, first.dtype)
        for new, kept in zip(copy.kv, self.kv):  # (2, rows, nh, capacity, hd)
            new[:, :, :, : self.width] = kept[:, :1, :, : self.width]
        copy.width = self.width
        return copy


class LayerCache:
    """One attention layer's part of a KVBuffer."""

    def __init__(self, buffer: KVBuffer, layer: int):
        self.buffer, self.layer = buffer, layer

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (rows, nh, T, hd) after the filled columns -> every column's keys and values,
        (rows, nh, width + T, hd) views of the buffer (the model's forward then moves `width` on by T)."""
        buffer = self.buffer
        buffer.check_room(k.size(2))
        width, end = buffer.width, buffer.width + k.size(2)
        # narrow + copy_: a token's decoding step is a few microseconds of arithmetic, slicing costs more
        keys = buffer.keys[self.layer].narrow(0, 0, buffer.rows)
        values = buffer.values[self.layer].narrow(0, 0, buffer.rows)
        keys.narrow(2, width, k.size(2)).copy_(k)
        values.narrow(2, width, v.size(2)).copy_(v)
        return keys.narrow(2, 0, end), values.narrow(2, 0, end)


@dataclass
class TransformerOutput:
    logits: torch.Tensor | None  # (B, T, V); None when the caller only wants hidden states
    hidden_states: torch.Tensor  # (B, T, C), after the last block (and final LayerNorm when pre-LN)
    kv_cache: KVBuffer | None = field(default=None)  # the buffer the forward extended, if use_cache


def _gelu(x: torch.Tensor, kind: str) -> torch.Tensor:
    return F.gelu(x, approximate="tanh" if kind == "gelu_new" else "none")


def activate(h: torch.Tensor, kind: str) -> torch.Tensor:
    """The MLP's nonlinearity on fc's output h (B, T, inner), or (B, T, 2 * inner) for swiglu -> (B, T, inner)."""
    if kind == "swiglu":
        gate, up = h.chunk(2, dim=-1)
        return F.silu(gate) * up
    if kind == "relu2":
        return F.relu(h).square()
    return _gelu(h, kind)


def _norm(cfg: TransformerConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
    return nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)


def rotary_tables(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin for `positions` (T,) or (B, T) -> (T, hd) or (B, 1, T, hd), broadcastable to (B, nh, T, hd).

    Llama's (and Hugging Face's) convention: pair i is dimensions (i, i + hd/2), turning at theta^(-2i/hd)
    radians per token, so an exported model needs no permutation of its query and key weights."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim)
    angles = positions.float()[..., None] * inv_freq  # (..., T, hd/2)
    angles = torch.cat([angles, angles], dim=-1)  # (..., T, hd)
    if positions.dim() == 2:
        angles = angles[:, None]  # (B, 1, T, hd): one set of positions per row
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Turn each (i, i + hd/2) pair of x (B, nh, T, hd) by its position's angle."""
    half = x.size(-1) // 2
    rotated_half = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated_half * sin


class SelfAttention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_head, self.dropout, self.qk_norm = cfg.n_head, cfg.dropout, cfg.qk_norm
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        is_causal: bool,
        past: LayerCache | None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        B, T, C = x.shape
        # (B, T, 3C) -> 3 x (B, nh, T, hd)
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4).unbind(0)
        if self.qk_norm:
            q, k = F.rms_norm(q, (q.size(-1),)), F.rms_norm(k, (k.size(-1),))
        if rope is not None:  # keys are cached already turned to their own positions
            q, k = rotate(q, *rope), rotate(k, *rope)
        if past is not None:  # written into the buffer in place; every cached column: (B, nh, T_past + T, hd)
            k, v = past.extend(k, v)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=self.dropout if self.training else 0.0
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        gated = cfg.activation == "swiglu"  # fc computes the gate and the up projection side by side
        self.fc = nn.Linear(cfg.n_embd, (2 if gated else 1) * cfg.inner, bias=cfg.bias)
        self.proj = nn.Linear(cfg.inner, cfg.n_embd, bias=cfg.bias)
        self.activation = cfg.activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(activate(self.fc(x), self.activation))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.pre_ln = cfg.pre_ln
        self.ln1 = _norm(cfg)
        self.attn = SelfAttention(cfg)
        self.ln2 = _norm(cfg)
        self.mlp = MLP(cfg)
        self.dropout = cfg.dropout

    def drop(self, x: torch.Tensor) -> torch.Tensor:
        # A function, not an nn.Dropout: at p = 0 or in eval mode a module call per use costs a token's
        # decoding step more than its arithmetic (see benchmarks/generation_benchmark.py).
        return F.dropout(x, self.dropout, training=True) if self.dropout and self.training else x

    def forward(self, x, mask, is_causal, past, rope=None):
        if self.pre_ln:  # GPT-2: the residual stream is never normalised, which trains stably when deep
            x = x + self.drop(self.attn(self.ln1(x), mask, is_causal, past, rope))
            return x + self.drop(self.mlp(self.ln2(x)))
        x = self.ln1(x + self.drop(self.attn(x, mask, is_causal, past)))  # BERT: normalise after each residual add
        return self.ln2(x + self.drop(self.mlp(x)))


class MLMHead(nn.Module):
    """BERT's prediction head: dense -> gelu -> LayerNorm, then the tied embedding plus a bias."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.ln = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.activation = cfg.activation

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.ln(_gelu(self.dense(h), self.activation))
        return h @ embedding.T + self.bias  # (B, T, V)


def gpt2_init(module: nn.Module) -> None:
    """GPT-2's initialisation, for `nn.Module.apply`: N(0, 0.02) weights for linear maps and embeddings, zero
    biases (the residual projections are then rescaled by depth by each model)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.positions == "learned" else None
        self.type_emb = nn.Embedding(cfg.type_vocab_size, cfg.n_embd) if cfg.type_vocab_size else None
        self.ln_emb = None if cfg.pre_ln else nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = _norm(cfg) if cfg.pre_ln else None
        # GPT reads logits straight off the tied embedding (or its own head); BERT adds its transform head.
        self.mlm_head = None if cfg.causal else MLMHead(cfg)
        self.lm_head = None if cfg.tie_head else nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.apply(gpt2_init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # GPT-2: scale residual projections by depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))
            if cfg.zero_init and (name.endswith("proj.weight") or name == "lm_head.weight"):
                nn.init.zeros_(p)  # modded-nanogpt: blocks start as the identity, the head predicts uniformly

    def forward(
        self,
        idx: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        kv_cache: KVBuffer | None = None,
        use_cache: bool = False,
        compute_logits: bool = True,
        position_ids: torch.Tensor | None = None,
    ) -> TransformerOutput:
        """idx (B, T) token ids; attention_mask (B, T_past + T), 1 = attend, 0 = padding.

        With `kv_cache` (a KVBuffer: a previous call's output, or made by the caller) only the new tokens are
        passed in `idx`, and their keys and values are written into it; `use_cache=True` without one makes one.
        `position_ids` (B, T) gives each row its own positions: a batch whose rows are left-padded to
        one length (continuous batching, genlab.models.batching) counts positions from each row's first real token.
        `compute_logits=False` skips the vocabulary projection (as costly as a small model's blocks)
        for callers that read hidden states only, such as a classification head.
        """
        cfg = self.config
        B, T = idx.shape
        if kv_cache is None and use_cache:  # a rotary model without a past may read more than its block
            kv_cache = KVBuffer(cfg, B, max(cfg.block_size, T), idx.device, self.tok_emb.weight.dtype)
        if kv_cache is not None and kv_cache.rows != B:
            raise GenlabError(f"the KV cache holds {kv_cache.rows} rows, the batch {B}")
        past = kv_cache.width if kv_cache is not None else 0
        # A rotary model has no position table: without a cache it reads any length, each token attending to
        # the last block_size tokens (a sliding window, what a rolling cache computes); a cache stays in the block
        # unless a mask hides the columns rolled past (continuous batching's rows).
        if past + T > cfg.block_size and (self.pos_emb is not None or (past and attention_mask is None)):
            raise GenlabError(f"sequence of {past + T} tokens is longer than the context ({cfg.block_size})")
        if position_ids is None:
            position_ids = torch.arange(past, past + T, device=idx.device)
        elif position_ids.shape != (B, T):  # (values past the table fail in the embedding lookup)
            raise GenlabError(f"position_ids must be (B, T) = {(B, T)}, got {tuple(position_ids.shape)}")
        x, rope = self._embed(idx, position_ids, token_type_ids)  # (B, T, C)
        mask, is_causal = self._attention_mask(attention_mask, B, T, past, idx.device)
        layers = kv_cache.layers if kv_cache is not None else [None] * len(self.blocks)
        for block, past_layer in zip(self.blocks, layers):
            x = block(x, mask, is_causal, past_layer, rope)
        if kv_cache is not None:
            kv_cache.width += T
        h = self.ln_f(x) if self.ln_f is not None else x  # (B, T, C)
        logits = self._logits(h) if compute_logits else None
        return TransformerOutput(logits=logits, hidden_states=h, kv_cache=kv_cache if use_cache else None)

    def _embed(
        self, idx: torch.Tensor, position_ids: torch.Tensor, token_type_ids: torch.Tensor | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Token (+ position or rotary tables, + segment) embeddings: x (B, T, C) and the rotary tables."""
        cfg = self.config
        x = self.tok_emb(idx)  # (B, T, C)
        rope = None
        if self.pos_emb is not None:
            x = x + self.pos_emb(position_ids)
        else:
            rope = rotary_tables(position_ids, cfg.n_embd // cfg.n_head, cfg.rope_theta)
        if self.type_emb is not None:
            types = token_type_ids if token_type_ids is not None else torch.zeros_like(idx)
            x = x + self.type_emb(types)
        if self.ln_emb is not None:
            x = self.ln_emb(x)
        if cfg.dropout and self.training:
            x = F.dropout(x, cfg.dropout, training=True)
        return x, rope

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, T, C) -> logits (B, T, V): the masked-LM head, or the (tied or own) LM head, soft-capped."""
        if self.mlm_head is not None:
            return self.mlm_head(h, self.tok_emb.weight)
        logits = h @ (self.tok_emb.weight if self.lm_head is None else self.lm_head.weight).T  # (B, T, V)
        cap = self.config.logit_softcap
        if cap:  # smoothly bounded to (-cap, cap): no runaway confidence early in training
            logits = cap * torch.tanh(logits / cap)
        return logits

    def _attention_mask(
        self, attention_mask: torch.Tensor | None, B: int, T: int, past: int, device: torch.device
    ) -> tuple[torch.Tensor | None, bool]:
        """A boolean mask broadcastable to (B, nh, T, past + T), or SDPA's fast is_causal path."""
        causal = self.config.causal
        if attention_mask is not None and attention_mask.shape != (B, past + T):
            raise GenlabError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected {(B, past + T)}")
        if attention_mask is None and (not causal or T == 1):
            return None, False  # one new token may see every cached one
        window = past + T > self.config.block_size  # rotary only (forward refuses it otherwise)
        if attention_mask is None and past == 0 and not window:
            return None, True
        if causal and T == 1 and attention_mask is not None:  # one new token: every real cached one, and itself
            mask = attention_mask.bool()[:, None, None, :].clone()  # (B, 1, 1, past + 1)
            mask[..., -1] = True
            return mask, False
        mask = torch.ones(T, past + T, dtype=torch.bool, device=device)
        if causal:  # query i sits at absolute position past + i
            mask = mask.tril(diagonal=past)
        if window:  # ... and sees keys from past + i - block_size + 1 on
            mask = mask.triu(diagonal=past - self.config.block_size + 1)
        mask = mask.expand(B, 1, T, past + T)
        if attention_mask is not None:
            mask = mask & attention_mask.bool()[:, None, None, :]
            # A padding query that sees nothing would turn into NaN and leak through 0 * NaN;
            # letting every token see itself keeps padded rows finite (their outputs are ignored).
            self_pos = torch.zeros(T, past + T, dtype=torch.bool, device=device)
            self_pos[torch.arange(T), past + torch.arange(T)] = True
            mask = mask | self_pos
        return mask, False


class TokenLogits(nn.Module):
    """A transformer as ids (B, T) -> logits (B, T, V) alone, no cache: the graph `genlab export` writes."""

    def __init__(self, model: Transformer):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids).logits
