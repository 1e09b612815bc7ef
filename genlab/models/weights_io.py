"""Two things every saved-weights format here needs: an atomic folder write and a base fingerprint."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from genlab.errors import GenlabError


def write_folder(folder: str | Path, tensors: dict[str, torch.Tensor], config: dict, weights_name: str,
                 config_name: str) -> Path:
    """Write the safetensors file and the JSON config to temporary names, then rename each into
    place: an interrupted save never leaves a half-written file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp_w, tmp_c = folder / (weights_name + ".tmp"), folder / (config_name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp_w), metadata={"format": "pt"})
    tmp_c.write_text(json.dumps(config, indent=2), encoding="utf-8")
    os.replace(tmp_w, folder / weights_name)
    os.replace(tmp_c, folder / config_name)
    return folder


def fingerprint(model: nn.Module, exclude: set[str]) -> str:
    """sha256 over the name, dtype, shape and bytes of every state tensor not in `exclude`: which
    base model an adapter (the excluded tensors) was trained on."""
    digest = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if name in exclude:
            continue
        t = t.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def read_folder_meta(folder: Path, weights_name: str, config_name: str, fmt: str, what: str) -> dict:
    """The JSON config of a folder `write_folder` made, after checking both files exist and the format
    is `fmt` (`what` names the kind of folder in the error)."""
    for name in (config_name, weights_name):
        if not (folder / name).is_file():
            raise GenlabError(f"{folder} has no {name}")
    meta = json.loads((folder / config_name).read_text(encoding="utf-8"))
    if meta.get("format") != fmt:
        raise GenlabError(f"{folder / config_name} is not a genlab {what} (format {meta.get('format')!r})")
    return meta
