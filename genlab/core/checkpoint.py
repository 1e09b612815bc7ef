"""Resumable checkpoints: one safetensors file per module + trainer state, written atomically.

checkpoints/last/
  generator.safetensors, discriminator.safetensors   weights (portable, no pickle)
  state.pt                                           optimizers, RNG states, step, FLOP and time counters
  meta.json                                          the task and the model config that made the weights
The folder is written as last.tmp and renamed into place, so an interrupted save never leaves a
half-written checkpoint behind.
"""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from genlab.core.recipe import from_dict
from genlab.core.run import RunDir
from genlab.errors import GenlabError, first_line
from genlab.io.files import read_json
from genlab.io.weights import check_tensors, read_tensors, save_tensors


def save_checkpoint(folder: Path, modules: dict[str, nn.Module], state: dict[str, Any], meta: dict[str, Any]) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # what a save killed while writing left
    tmp.mkdir(parents=True)
    for name, module in modules.items():
        save_tensors(tmp / f"{name}.safetensors", module.state_dict())
    torch.save(state, tmp / "state.pt")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    recover_interrupted_save(folder)
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def recover_interrupted_save(folder: Path) -> None:
    """Undo what a save killed between its steps left: a complete `<folder>.old` alone (killed between the
    two renames) goes back into place; a `<folder>.old` beside a complete folder (killed while deleting it)
    goes, so that the next save can rename the folder to it."""
    old = folder.with_name(folder.name + ".old")
    if not old.exists():
        return
    if (folder / "meta.json").is_file():
        shutil.rmtree(old, ignore_errors=True)
    elif (old / "meta.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        old.rename(folder)


def has_checkpoint(folder: Path) -> bool:
    recover_interrupted_save(folder)
    return (folder / "meta.json").is_file()


def read_meta(folder: Path) -> dict[str, Any]:
    if not has_checkpoint(folder):
        raise GenlabError(f"no checkpoint in {folder}")
    meta = read_json(folder / "meta.json", "checkpoint description")
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        raise GenlabError(f"{folder / 'meta.json'} does not describe a genlab checkpoint")
    return meta


def load_weights(folder: Path, modules: dict[str, nn.Module], meta: dict[str, Any]) -> None:
    """Load module weights, refusing a checkpoint made by another model configuration."""
    saved = read_meta(folder)["model"]
    if saved != meta.get("model"):
        diff = sorted(k for k in set(saved) | set(meta["model"]) if saved.get(k) != meta["model"].get(k))
        described = ", ".join(f"model.{k}={saved.get(k)!r} (expected {meta['model'].get(k)!r})" for k in diff)
        raise GenlabError(f"checkpoint {folder} is from another model: {described}")
    for name, module in modules.items():
        path = folder / f"{name}.safetensors"
        tensors = read_tensors(path)
        check_tensors(tensors, module.state_dict(), path)
        module.load_state_dict(tensors)


def load_state(folder: Path) -> dict[str, Any]:
    try:
        return torch.load(folder / "state.pt", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:  # damaged: one line
        # an empty file's EOFError says nothing: first_line names its type then
        raise GenlabError(f"cannot load trainer state from {folder}: {first_line(exc, 300)}") from None


def open_run_checkpoint(run: RunDir, which: str, task: str) -> tuple[Path, dict[str, Any]]:
    """The `which` (last | best) checkpoint folder of a run and its meta, checked to be a `task` run."""
    if which not in ("last", "best"):
        raise GenlabError(f"checkpoint must be last or best, got {which!r}")
    folder = run.checkpoint_dir if which == "last" else run.best_checkpoint_dir
    if not has_checkpoint(folder):
        raise GenlabError(
            f"{run.path} has no {which} checkpoint (was its training interrupted before the "
            f"first one? `genlab train --resume {run.path}` continues it)"
        )
    meta = read_meta(folder)
    if meta.get("task") != task:
        raise GenlabError(f"{folder} holds a '{meta.get('task')}' checkpoint, not one of this '{task}' run")
    return folder, meta


class RunNetwork(NamedTuple):
    """A run's network as load_network returns it."""

    config: Any  # the network's config, read from the checkpoint's meta
    network: nn.Module  # in eval mode
    meta: dict[str, Any]  # the checkpoint's meta.json
    folder: Path  # the checkpoint folder it came from


def load_network(
    run: RunDir, which: str, task: str, config_type: type, build: Callable[[Any], nn.Module], name: str
) -> RunNetwork:
    """The network of a `task` run, from its `which` (last | best) checkpoint: its config is the meta's
    "model" read as `config_type`, the network is `build(config)`, and its weights are those of the module
    the run samples from where the meta names one ("sampler": e.g. an EMA copy), else of module `name`."""
    folder, meta = open_run_checkpoint(run, which, task)
    config = from_dict(config_type, meta["model"])
    network = build(config)
    load_weights(folder, {meta.get("sampler", name): network}, meta)
    return RunNetwork(config, network.eval(), meta, folder)
