"""Text pretraining objectives: causal LM, masked LM (BERT's 80/10/10 masking), L2 regularizer.

The essay's pretraining loss is task loss + lambda * regularizer; `total_loss` spells that out with
lambda an explicit argument, so a recipe that sets it to 0 says so rather than relying on a default.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100  # label value cross-entropy skips (padding, unmasked MLM positions)


def causal_lm_loss(logits: torch.Tensor, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Next-token cross-entropy: position t predicts ids[t + 1]. logits (B, T, V), ids (B, T)."""
    targets = ids[:, 1:].clone()  # (B, T-1)
    if attention_mask is not None:
        targets[attention_mask[:, 1:] == 0] = IGNORE_INDEX
    logits = logits[:, :-1]  # (B, T-1, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the selected positions only; labels (B, T) are IGNORE_INDEX elsewhere."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE_INDEX)


def mask_tokens(
    ids: torch.Tensor,
    vocab_size: int,
    mask_id: int,
    special_ids: Iterable[int] = (),
    prob: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: select `prob` of the non-special tokens; of those 80% -> mask_id, 10% -> a random
    token, 10% unchanged (so the model cannot assume an unmasked token is always right).

    Returns (inputs, labels): labels hold the original id at selected positions, IGNORE_INDEX elsewhere.
    """
    special = torch.zeros_like(ids, dtype=torch.bool)
    for s in special_ids:
        special |= ids == s
    u = torch.rand(ids.shape, generator=generator, device=ids.device)
    selected = (u < prob) & ~special
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))
    # One more uniform draw decides the fate of each selected token: [0, .8) mask, [.8, .9) random, rest keep.
    fate = torch.rand(ids.shape, generator=generator, device=ids.device)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator, device=ids.device)
    inputs = torch.where(selected & (fate < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(selected & (fate >= 0.8) & (fate < 0.9), random_ids, inputs)
    return inputs, labels


def l2_regularizer(model: nn.Module) -> torch.Tensor:
    """Sum of squared weight matrices and embeddings; biases and LayerNorm parameters are left out,
    as weight decay does, because shrinking them only shifts activations."""
    return sum(p.pow(2).sum() for p in model.parameters() if p.dim() >= 2)


def total_loss(task_loss: torch.Tensor, model: nn.Module, lam: float) -> torch.Tensor:
    """loss = task loss + lam * L2(weights); lam = 0 skips computing the regularizer."""
    return task_loss if lam == 0 else task_loss + lam * l2_regularizer(model)
