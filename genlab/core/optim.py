"""Optimiser and schedule helpers that more than one task uses."""

from __future__ import annotations

import math

import torch


def cosine_lr(step: int, lr: float, min_lr: float, warmup: int, total: int) -> float:
    """Linear warm-up to lr over `warmup` steps, then cosine decay to min_lr at the last step."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - min_lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate to lr, times the group's `lr_scale` where it has one (Muon's groups)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def adamw(model: torch.nn.Module, lr: float, betas: list[float], weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, with weight decay on matrices and embeddings only:
    decaying biases and LayerNorm gains would only shift activations."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))


def descend(optimizer: torch.optim.Optimizer, model: torch.nn.Module, loss: torch.Tensor, grad_clip: float) -> float:
    """One step down `loss`: fresh gradients, their norm clipped to `grad_clip` (0 = off), the optimizer's
    update. Returns the gradient norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or float("inf"))
    optimizer.step()
    return norm.item()
