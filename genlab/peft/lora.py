"""LoRA (Hu et al. 2021) for the nn.Linear layers of genlab's Transformer.

A wrapped layer computes y = W x + b + (alpha / rank) * B A dropout(x), with A Kaiming-initialised and
B zero-initialised (as in the paper and peft), so a freshly wrapped model computes exactly what its
base did. `apply_lora` freezes every base parameter; only the A and B matrices train.

The wrapper keeps the base layer's parameters under their own names (`blocks.0.attn.qkv.weight`
stays `blocks.0.attn.qkv.weight`), so base checkpoints and `save_gpt2` see the usual names and the
LoRA tensors appear beside them as `blocks.0.attn.qkv.lora_A` / `.lora_B`.

What a LoRA run ships is the fine-tuning delta of genlab.peft.methods (the trained tensors and a
fingerprint of the base), the one on-disk format for every parameter-efficient method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError


@dataclass
class LoraConfig:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    # Matched against module names as peft does: "attn.qkv" wraps every `blocks.<i>.attn.qkv`.
    target_modules: list[str] = field(default_factory=lambda: ["attn.qkv"])

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise GenlabError(f"LoRA rank must be positive, got {self.rank}")
        if self.alpha <= 0:
            raise GenlabError(f"LoRA alpha must be positive, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise GenlabError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise GenlabError("LoRA target_modules is empty")

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank


class LoraLinear(nn.Module):
    """An nn.Linear plus a trainable low-rank update; the base weight and bias stay frozen."""

    def __init__(self, base: nn.Linear, cfg: LoraConfig):
        super().__init__()
        # The base's own Parameter objects, registered under the same names, so no copy is made.
        self.weight = base.weight.requires_grad_(False)  # (out, in)
        self.bias = base.bias.requires_grad_(False) if base.bias is not None else None  # (out,)
        self.lora_A = nn.Parameter(torch.empty(cfg.rank, base.in_features, dtype=base.weight.dtype))  # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, cfg.rank, dtype=base.weight.dtype))  # (out, r)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's (and peft's) initialisation
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout else nn.Identity()
        self.scaling = cfg.scaling
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scaling  # (out, in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)  # (..., out)
        if self.merged:  # the update already lives in self.weight
            return y
        return y + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.weight += self.delta_weight().to(self.weight.dtype)
            self.merged = True


def _generic_name(name: str) -> str:
    """`blocks.3.attn.qkv` -> `attn.qkv`: the name a user writes in target_modules."""
    parts = name.split(".")
    return ".".join(parts[2:]) if parts[0] == "blocks" and len(parts) > 2 else name


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def lora_layers(model: nn.Module) -> dict[str, LoraLinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, LoraLinear)}


def apply_lora(model: nn.Module, cfg: LoraConfig) -> nn.Module:
    """Wrap every nn.Linear whose name matches a target, and freeze all base parameters (in place)."""
    if lora_layers(model):
        raise GenlabError("the model already has LoRA layers")
    linears = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    available = sorted({_generic_name(n) for n in linears})
    for target in cfg.target_modules:
        if not any(_matches(n, target) for n in linears):
            raise GenlabError(f"unknown LoRA target module {target!r}; available: {', '.join(available)}")
    model.requires_grad_(False)
    for name, linear in linears.items():
        if any(_matches(name, t) for t in cfg.target_modules):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, LoraLinear(linear, cfg))
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold B A into W: inference then costs nothing extra."""
    for layer in lora_layers(model).values():
        layer.merge()
    return model


def trainable_parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
