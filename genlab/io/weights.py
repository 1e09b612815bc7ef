"""Safetensors weights: one strict loader, one atomic folder writer, and a base fingerprint.

Every place genlab reads tensors into a module (checkpoints, fine-tuning deltas, Hugging Face folders,
evaluator networks) goes through `read_tensors` + `check_tensors`, so a missing, unexpected or
mis-shaped tensor is always one line naming the file and the tensor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from genlab.errors import GenlabError
from genlab.io.files import atomic_write, atomic_write_text, read_json


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file; an unreadable or corrupt file is one line."""
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise GenlabError(f"cannot load {path}: {exc}") from None


def check_tensors(
    tensors: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    source: str | Path,
    optional: tuple[str, ...] = (),
    names: Mapping[str, str] | None = None,
) -> None:
    """Refuse `tensors` unless they hold every expected name (except those starting with `optional`)
    in its shape, and nothing else. `names` maps genlab's names to the file's for the message."""
    shown = names or {}
    for name, target in expected.items():
        if name not in tensors:
            if optional and name.startswith(optional):
                continue
            raise GenlabError(f"{source}: missing tensor {shown.get(name, name)!r}")
        if tuple(tensors[name].shape) != tuple(target.shape):
            raise GenlabError(
                f"{source}: tensor {shown.get(name, name)!r} has shape {tuple(tensors[name].shape)}, "
                f"expected {tuple(target.shape)}"
            )
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise GenlabError(f"{source}: unexpected tensor {shown.get(unexpected[0], unexpected[0])!r}")


def load_module(module: nn.Module, path: str | Path) -> nn.Module:
    """Load a safetensors file into `module`, strictly."""
    tensors = read_tensors(path)
    check_tensors(tensors, module.state_dict(), path)
    module.load_state_dict(tensors)
    return module


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor]) -> Path:
    cpu = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata={"format": "pt"}))


def write_folder(
    folder: str | Path, tensors: Mapping[str, torch.Tensor], config: dict, weights_name: str, config_name: str
) -> Path:
    """A weights file and its JSON config in `folder`, each renamed into place."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenlabError(f"cannot create {folder}: {exc.strerror or exc}") from None
    save_tensors(folder / weights_name, tensors)
    atomic_write_text(folder / config_name, json.dumps(config, indent=2))
    return folder


def read_folder_meta(folder: Path, weights_name: str, config_name: str, fmt: str, what: str) -> dict:
    """The JSON config of a folder `write_folder` made, after checking both files exist and the format
    is `fmt` (`what` names the kind of folder in the error)."""
    for name in (config_name, weights_name):
        if not (folder / name).is_file():
            raise GenlabError(f"{folder} has no {name}")
    meta = read_json(folder / config_name, what + " config")
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise GenlabError(f"{folder / config_name} is not a genlab {what} (format {found!r})")
    return meta


def fingerprint(model: nn.Module, exclude: Iterable[str]) -> str:
    """sha256 over the name, dtype, shape and bytes of every state tensor not in `exclude`: which
    base model an adapter (the excluded tensors) was trained on."""
    exclude = set(exclude)
    digest = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if name in exclude:
            continue
        t = t.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
