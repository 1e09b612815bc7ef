"""Exponential moving averages of a network's weights, to sample from (GAN generators, flow models)."""

from __future__ import annotations

import torch


@torch.no_grad()
def update_ema(averaged: torch.nn.Module, live: torch.nn.Module, decay: float, step: int) -> None:
    """averaged <- decay * averaged + (1 - decay) * live, with a warm-up ((1 + step) / (10 + step)) so the
    average does not carry the random initial weights for thousands of steps; buffers (BatchNorm
    statistics) are copied. One multi-tensor lerp over all parameters: the same numbers as one lerp per
    tensor, without a kernel launch per tensor."""
    decay = min(decay, (1 + step) / (10 + step))
    torch._foreach_lerp_(list(averaged.parameters()), list(live.parameters()), 1 - decay)
    for avg, current in zip(averaged.buffers(), live.buffers()):
        avg.copy_(current)
