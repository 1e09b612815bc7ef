"""LoRA for convolutions: a low-rank update of every Conv2d / ConvTranspose2d kernel.

A kernel W of shape (d0, d1, kh, kw) is read as a (d0, d1 kh kw) matrix and gets W + (alpha / rank) B A,
with A (rank, d1 kh kw) Kaiming-initialised and B (d0, rank) zero, so the wrapped network computes exactly
what its base did until B moves (the recipe of LoRA for linear layers, genlab.peft.lora, applied to the
flattened kernel as LyCORIS / peft's Conv2d LoRA do). It is a torch parametrization: the layer keeps its
class and forward, and `merge_conv_lora` folds the update into the kernel for inference.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

CONVS = (nn.Conv2d, nn.ConvTranspose2d)


class LowRankDelta(nn.Module):
    """The parametrization W -> W + scale * (B A).view(W.shape)."""

    def __init__(self, shape: torch.Size, rank: int, alpha: float):
        super().__init__()
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, math.prod(shape[1:])))  # (r, d1 kh kw)
        self.lora_B = nn.Parameter(torch.zeros(shape[0], rank))  # (d0, r)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (self.lora_B @ self.lora_A).view_as(weight) * self.scaling


def apply_conv_lora(model: nn.Module, rank: int, alpha: float) -> nn.Module:
    """Freeze every parameter of `model`, then give each convolution a trainable low-rank kernel update."""
    model.requires_grad_(False)
    for module in model.modules():
        if isinstance(module, CONVS):
            parametrize.register_parametrization(module, "weight", LowRankDelta(module.weight.shape, rank, alpha))
    return model


def merge_conv_lora(model: nn.Module) -> nn.Module:
    """Fold each update into its kernel (plain layers again, no extra cost at inference)."""
    for module in model.modules():
        if isinstance(module, CONVS) and parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model
