"""Resumable checkpoints: one safetensors file per module + trainer state, written atomically.

checkpoints/last/
  generator.safetensors, discriminator.safetensors   weights (portable, no pickle)
  state.pt                                           optimizers, RNG states, step, epoch
  meta.json                                          the model config that made the weights
The folder is written as last.tmp and renamed into place, so an interrupted save never leaves a
half-written checkpoint behind.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from genlab.errors import GenlabError
from genlab.tracking import RunDir


def save_checkpoint(folder: Path, modules: dict[str, nn.Module], state: dict[str, Any],
                    meta: dict[str, Any]) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, module in modules.items():
        tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
        save_file(tensors, str(tmp / f"{name}.safetensors"))
    torch.save(state, tmp / "state.pt")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def recover_interrupted_save(folder: Path) -> None:
    """An interrupt between save_checkpoint's two renames leaves only `<folder>.old`: put it back."""
    old = folder.with_name(folder.name + ".old")
    if not (folder / "meta.json").is_file() and (old / "meta.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        old.rename(folder)


def read_meta(folder: Path) -> dict[str, Any]:
    recover_interrupted_save(folder)
    path = folder / "meta.json"
    if not path.is_file():
        raise GenlabError(f"no checkpoint in {folder}")
    return json.loads(path.read_text())


def load_weights(folder: Path, modules: dict[str, nn.Module], meta: dict[str, Any]) -> None:
    """Load module weights, refusing a checkpoint made by another model configuration."""
    saved = read_meta(folder).get("model")
    if saved != meta.get("model"):
        diff = sorted(k for k in set(saved or {}) | set(meta["model"])
                      if (saved or {}).get(k) != meta["model"].get(k))
        described = ", ".join(f"model.{k}={(saved or {}).get(k)!r} (expected {meta['model'].get(k)!r})" for k in diff)
        raise GenlabError(f"checkpoint {folder} is from another model: {described}")
    for name, module in modules.items():
        path = folder / f"{name}.safetensors"
        try:
            tensors = load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise GenlabError(f"cannot load {path}: {exc}") from None
        expected = module.state_dict()
        for key, value in expected.items():
            if key not in tensors or tensors[key].shape != value.shape:
                raise GenlabError(f"{path}: tensor '{key}' is missing or has the wrong shape")
        if set(tensors) - set(expected):
            raise GenlabError(f"{path}: unexpected tensor '{sorted(set(tensors) - set(expected))[0]}'")
        module.load_state_dict(tensors)


def load_state(folder: Path) -> dict[str, Any]:
    try:
        return torch.load(folder / "state.pt", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise GenlabError(f"cannot load trainer state from {folder}: {exc}") from None


def open_run_checkpoint(run_path: Path, which: str, task: str) -> tuple[RunDir, Path, dict[str, Any]]:
    """A run directory, its `which` (last | best) checkpoint folder and meta, checked to be a `task` run."""
    run = RunDir(run_path)
    run.read_config()  # one clear line when run_path is not a run directory
    folder = run.checkpoint_dir if which == "last" else run.best_checkpoint_dir
    meta = read_meta(folder)
    if meta.get("task") != task:
        raise GenlabError(f"{run_path} is a '{meta.get('task')}' run, not a '{task}' run")
    return run, folder, meta
