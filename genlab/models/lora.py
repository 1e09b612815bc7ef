"""LoRA (Hu et al. 2021) for the nn.Linear layers of genlab's Transformer.

A wrapped layer computes y = W x + b + (alpha / rank) * B A dropout(x), with A Kaiming-initialised and
B zero-initialised (as in the paper and peft), so a freshly wrapped model computes exactly what its
base did. `apply_lora` freezes every base parameter; only the A and B matrices train.

The wrapper keeps the base layer's parameters under their own names (`blocks.0.attn.qkv.weight`
stays `blocks.0.attn.qkv.weight`), so base checkpoints and `save_gpt2` see the usual names and the
LoRA tensors appear beside them as `blocks.0.attn.qkv.lora_A` / `.lora_B`.

`save_lora` writes only those tensors (safetensors) plus `adapter_config.json` holding the LoRA
config and a fingerprint of the base weights; `load_lora` refuses an adapter trained on another base.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from genlab.errors import GenlabError
from genlab.models.weights_io import fingerprint, read_folder_meta, write_folder

ADAPTER_WEIGHTS, ADAPTER_CONFIG = "adapter_model.safetensors", "adapter_config.json"
FORMAT = "genlab-lora/1"


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
        self.config = cfg  # kept so that save_lora can record how the adapter was made
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

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.weight -= self.delta_weight().to(self.weight.dtype)
            self.merged = False


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


def unmerge_lora(model: nn.Module) -> nn.Module:
    for layer in lora_layers(model).values():
        layer.unmerge()
    return model


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{p}": getattr(layer, p).detach()
        for name, layer in lora_layers(model).items()
        for p in ("lora_A", "lora_B")
    }


def trainable_parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def base_fingerprint(model: nn.Module) -> str:
    """Which base an adapter belongs to: the fingerprint of every non-LoRA tensor."""
    if any(layer.merged for layer in lora_layers(model).values()):
        raise GenlabError("LoRA weights are merged into the base; call unmerge_lora first")
    return fingerprint(model, set(lora_state_dict(model)))


def save_lora(model: nn.Module, folder: str | Path) -> Path:
    """Write the LoRA tensors and their config (with the base's fingerprint) into `folder`."""
    layers = lora_layers(model)
    if not layers:
        raise GenlabError("the model has no LoRA layers to save")
    cfg, tensors = next(iter(layers.values())).config, lora_state_dict(model)
    meta = {"format": FORMAT, "lora": asdict(cfg), "base_fingerprint": base_fingerprint(model)}
    return write_folder(folder, tensors, meta, ADAPTER_WEIGHTS, ADAPTER_CONFIG)


def load_lora(model: nn.Module, folder: str | Path) -> nn.Module:
    """Apply the adapter saved in `folder` to `model` (a base without LoRA layers), checking the base."""
    folder = Path(folder)
    meta = read_folder_meta(folder, ADAPTER_WEIGHTS, ADAPTER_CONFIG, FORMAT, "LoRA adapter")
    base = base_fingerprint(model)
    if base != meta["base_fingerprint"]:
        raise GenlabError(
            f"{folder} was trained on a different base model (base fingerprint {meta['base_fingerprint'][:12]}, "
            f"this model {base[:12]})"
        )
    apply_lora(model, LoraConfig(**meta["lora"]))
    tensors, expected = load_file(str(folder / ADAPTER_WEIGHTS)), lora_state_dict(model)
    source = folder / ADAPTER_WEIGHTS
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise GenlabError(f"{source}: unexpected tensor {unexpected[0]!r}")
    for name, target in expected.items():
        if name not in tensors:
            raise GenlabError(f"{source}: missing tensor {name!r}")
        if tensors[name].shape != target.shape:
            raise GenlabError(
                f"{source}: tensor {name!r} has shape {tuple(tensors[name].shape)}, expected {tuple(target.shape)}"
            )
    with torch.no_grad():
        for name, target in expected.items():
            target.copy_(tensors[name])  # `target` is a detached view of the live parameter
    return model
