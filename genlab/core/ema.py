"""Exponential moving averages of a network's weights, to sample from (GAN generators, flow models)."""

from __future__ import annotations

import copy

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


class SamplerEMA:
    """The network a training samples from: with `decay` > 0 a frozen moving average of `modules[name]`,
    kept in `modules` as `<name>_ema` so that checkpoints save it; with `decay` 0 the live network itself.

    Averaging over the last ~1/(1 - decay) steps smooths out the live weights' wandering (a GAN's G
    oscillating around D, Yazici et al. 2019; a diffusion model's noisy regression targets, as since DDPM).
    """

    def __init__(self, modules: dict[str, torch.nn.Module], name: str, decay: float):
        self.live, self.decay = modules[name], decay
        self.name = f"{name}_ema" if decay else name  # the module that samples, as a checkpoint's meta names it
        self.sampler = modules[name]
        if decay:
            self.sampler = copy.deepcopy(self.live).requires_grad_(False)
            modules[self.name] = self.sampler

    def update(self, step: int) -> None:
        """After optimisation step `step`: move the average towards the live weights (nothing without one)."""
        if self.decay:
            update_ema(self.sampler, self.live, self.decay, step)
