"""The fine-tuning methods, and the small file a parameter-efficient run ships instead of a model.

`apply_method` decides what trains: everything (full), the top k blocks (freeze), LoRA matrices
(lora) or bottleneck adapters (adapter); a task head outside the backbone always trains. Under lora
and adapter the base weights never change, so a run only needs to keep what trained:
`save_delta` writes those tensors (a few hundred KB) with a fingerprint of the frozen base, and
`load_delta` refuses to put them on any other base.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from genlab.config import MethodConfig
from genlab.errors import GenlabError
from genlab.models.adapters import add_adapters, freeze_lower_layers
from genlab.models.lora import LoraConfig, apply_lora
from genlab.models.transformer import Transformer
from genlab.models.weights_io import fingerprint, read_folder_meta, write_folder

DELTA_WEIGHTS, DELTA_CONFIG = "adapter_model.safetensors", "adapter_config.json"
FORMAT = "genlab-delta/1"
PARAMETER_EFFICIENT = ("lora", "adapter")


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
    try:
        tensors = load_file(str(folder / DELTA_WEIGHTS))
    except (OSError, SafetensorError) as exc:
        raise GenlabError(f"cannot load {folder / DELTA_WEIGHTS}: {exc}") from None
    base = fingerprint(model, set(tensors))
    if base != meta["base_fingerprint"]:
        raise GenlabError(f"{folder} was trained on a different base model (base fingerprint "
                          f"{meta['base_fingerprint'][:12]}, this base {base[:12]})")
    expected = trainable_tensors(model)
    for name in sorted(set(expected) | set(tensors)):
        if name not in tensors or name not in expected or tensors[name].shape != expected[name].shape:
            raise GenlabError(f"{folder / DELTA_WEIGHTS}: tensor {name!r} is missing, unexpected or mis-shaped")
    with torch.no_grad():
        for name, target in expected.items():
            target.copy_(tensors[name])
    return meta
