"""The fine-tuning methods, and the small file a parameter-efficient run ships instead of a model.

`apply_method` decides what trains: everything (full), the top k blocks (freeze), LoRA matrices
(lora) or bottleneck adapters (adapter); a task head outside the backbone always trains. Under lora
and adapter the base weights never change, so a run only needs to keep what trained:
`save_delta` writes those tensors (a few hundred KB) with a fingerprint of the frozen base, and
`load_delta` refuses to put them on any other base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.io.weights import check_tensors, fingerprint, read_folder_meta, read_tensors, write_folder
from genlab.models.transformer import Transformer
from genlab.peft.adapters import add_adapters, freeze_lower_layers
from genlab.peft.lora import LoraConfig, apply_lora

DELTA_WEIGHTS, DELTA_CONFIG = "adapter_model.safetensors", "adapter_config.json"
FORMAT = "genlab-delta/1"
METHODS = ("full", "freeze", "lora", "adapter")
PARAMETER_EFFICIENT = ("lora", "adapter")


@dataclass
class MethodConfig:
    """How much of the pretrained model trains (the essay's full vs parameter-efficient fine-tuning)."""

    name: str = "full"  # full | freeze | lora | adapter
    top_k: int = 1  # freeze: train only the top k blocks (and the head)
    rank: int = 8  # lora
    alpha: float = 16.0  # lora: the update is scaled by alpha / rank
    dropout: float = 0.0  # lora
    target_modules: list[str] = field(default_factory=lambda: ["attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"])
    bottleneck: int = 32  # adapter

    def __post_init__(self) -> None:
        if self.name not in METHODS:
            raise ValueError(f"method.name must be one of {', '.join(METHODS)}, got {self.name!r}")
        if self.top_k < 0 or self.bottleneck < 1:
            raise ValueError("method.top_k must be >= 0 and method.bottleneck >= 1")


def apply_method(model: nn.Module, backbone: Transformer, method: MethodConfig) -> nn.Module:
    """Set what trains in `model` (the backbone itself, or a classifier holding it), in place."""
    model.requires_grad_(True)
    if method.name == "freeze":
        freeze_lower_layers(backbone, method.top_k)
    elif method.name == "lora":
        apply_lora(backbone, LoraConfig(method.rank, method.alpha, method.dropout, list(method.target_modules)))
    elif method.name == "adapter":
        # LayerNorms stay frozen too, so the base is bit-identical after training (Houlsby train them).
        add_adapters(backbone, method.bottleneck, train_layer_norms=False)
    return model


def trainable_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def save_delta(model: nn.Module, folder: Path, meta: dict[str, Any]) -> Path:
    """Write the trainable tensors and `meta` + the base fingerprint, each file renamed into place."""
    tensors = trainable_tensors(model)
    meta = {"format": FORMAT, **meta, "base_fingerprint": fingerprint(model, set(tensors))}
    return write_folder(folder, tensors, meta, DELTA_WEIGHTS, DELTA_CONFIG)


def load_delta(model: nn.Module, folder: Path) -> dict[str, Any]:
    """Copy a saved delta into `model` (its base loaded and the same method applied); returns meta."""
    meta = read_folder_meta(folder, DELTA_WEIGHTS, DELTA_CONFIG, FORMAT, "fine-tuning delta")
    tensors = read_tensors(folder / DELTA_WEIGHTS)
    base = fingerprint(model, set(tensors))
    if base != meta.get("base_fingerprint"):
        raise GenlabError(
            f"{folder} was trained on a different base model (base fingerprint "
            f"{str(meta.get('base_fingerprint'))[:12]}, this base {base[:12]})"
        )
    expected = trainable_tensors(model)
    check_tensors(tensors, expected, folder / DELTA_WEIGHTS)
    with torch.no_grad():
        for name, target in expected.items():
            target.copy_(tensors[name])
    return meta
