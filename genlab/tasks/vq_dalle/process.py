"""The token transformer's process: next-token loss on the image tokens, and guided sampling.

Training: the sequence [caption][<image>][49 codes] (genlab/tasks/vq_dalle/captions.py) through the
shared causal transformer (genlab/models/transformer.py); cross-entropy on the 49 image positions only,
over the K code ids (the caption is given, not predicted). A share `cond_dropout` of the rows trains with
the null caption, so the one network is both p(image | caption) and p(image).

Sampling, token by token: classifier-free guidance on the logits (as in Parti / Muse / the
DALL-E mini line), l = l_u + w (l_c - l_u): w = 0 the unconditional model, w = 1 the conditional one,
w > 1 sharper; then temperature and top-k (genlab.models.generation's `sample_finite`). The conditional
and unconditional rows run as one batch of 2B through one KV cache, so each new token costs one
one-token step of 2B rows (B rows at w = 0 or 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genlab.models.decoding import OneTokenDecoder
from genlab.models.generation import check_finite, sample_finite
from genlab.models.transformer import KVBuffer, Transformer


def token_loss(model: Transformer, sequences: torch.Tensor, codebook_size: int, image_tokens: int) -> torch.Tensor:
    """sequences (B, Lc + 1 + 49) -> mean cross-entropy of the 49 image tokens, each predicted from
    everything before it, over the K code ids."""
    logits = model(sequences[:, :-1]).logits[:, -image_tokens:, :codebook_size]  # (B, 49, K)
    targets = sequences[:, -image_tokens:]  # (B, 49)
    return F.cross_entropy(logits.reshape(-1, codebook_size), targets.reshape(-1))


def guided(logits: torch.Tensor, rows: int, guidance: float) -> torch.Tensor:
    """(2B, K) conditional then unconditional rows -> l_u + w (l_c - l_u) (B, K); (B, K) when only one half
    was computed (w = 0 or 1)."""
    if logits.size(0) == rows:
        return logits
    cond, uncond = logits[:rows], logits[rows:]
    return uncond + guidance * (cond - uncond)


class Stepper:
    """Logits (rows, K) of the next image token, given the sequences so far: with a KV cache only the new
    token goes in (one-token steps through OneTokenDecoder where it applies), without one the whole
    sequence is read again (the reference the cache must equal)."""

    def __init__(self, model: Transformer, rows: int, codebook_size: int, use_cache: bool):
        self.model, self.k = model, codebook_size
        self.cache = KVBuffer(model.config, rows, device=model.tok_emb.weight.device) if use_cache else None
        self.decoder = OneTokenDecoder.of(model) if use_cache else None

    def __call__(self, seq: torch.Tensor, new: int) -> torch.Tensor:
        """seq (rows, T): the sequences so far, whose last `new` tokens the cache has not seen."""
        if self.cache is None:
            return self.model(seq).logits[:, -1, : self.k]
        if new == 1 and self.decoder is not None:
            return self.decoder(seq[:, -1:], self.cache)[:, : self.k]
        return self.model(seq[:, -new:], kv_cache=self.cache, use_cache=True).logits[:, -1, : self.k]


@torch.inference_mode()
def sample_tokens(
    model: Transformer,
    prefixes: torch.Tensor,
    null_prefix: torch.Tensor,
    image_tokens: int,
    codebook_size: int,
    guidance: float = 1.0,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """prefixes (B, Lc + 1): captions and <image>; null_prefix (Lc + 1,): the null caption's.
    -> image token ids (B, 49) drawn one by one with guidance weight w on the logits, temperature
    (0: greedy) and top-k. w = 1 reads only the caption rows, w = 0 only the null-caption rows."""
    B = prefixes.size(0)
    was_training = model.training
    model.eval()
    if guidance == 1:
        seq = prefixes
    elif guidance == 0:
        seq = null_prefix.expand(B, -1)
    else:
        seq = torch.cat([prefixes, null_prefix.expand(B, -1)])  # (2B, Lc + 1)
    step = Stepper(model, seq.size(0), codebook_size, use_cache)
    out = torch.empty(B, image_tokens, dtype=torch.long, device=prefixes.device)
    try:
        logits = step(seq, seq.size(1))
        for i in range(image_tokens):
            scores = guided(logits, B, guidance)  # (B, K)
            check_finite(scores)
            nxt = scores.argmax(-1) if temperature == 0 else sample_finite(scores, temperature, top_k, None, generator)
            out[:, i] = nxt
            seq = torch.cat([seq, nxt.repeat(seq.size(0) // B)[:, None]], dim=1)
            if i + 1 < image_tokens:
                logits = step(seq, 1)
    finally:
        model.train(was_training)
    return out
