"""Typed recipes: dataclasses loaded from YAML, `key.sub=value` overrides, unknown keys rejected.

A recipe file is one reproducible experiment. Its top-level `task:` names the task whose recipe
schema (a dataclass in `genlab/tasks/<name>/recipe.py`) reads it; every section is a dataclass whose
fields carry types, and `from_dict` checks each value against its field's type, so a typo or a wrong
type fails with one line naming the key, before anything is trained.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import sys
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from genlab.core.tracking import TrackingConfig
from genlab.errors import GenlabError
from genlab.io.files import read_yaml
from genlab.io.validate import check_int, check_seed, check_text

# The recipes shipped inside the package (package data); an installed genlab is a folder on disk, never a zip.
SHIPPED_RECIPES = Path(str(resources.files("genlab").joinpath("recipes")))
RECIPES_ENV = "GENLAB_RECIPES"  # the user's own recipe folders (os.pathsep-separated), searched first


def check_betas(betas: list[float]) -> None:
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError("train.betas must be two numbers in [0, 1)")


@dataclass
class TrainConfig:
    """What the trainer loop needs from every recipe; tasks extend it with their optimiser settings.

    A *period* is what the loop counts between samples, checkpoints and quick evaluations: one epoch
    over the data for most tasks; a fixed number of steps for tasks that draw their batches freely.
    """

    max_minutes: float = 0.0  # stop after this wall-clock budget (0 = no budget)
    max_cpu_minutes: float = 0.0  # stop after this much CPU time, all threads (0 = no budget): fair on a busy machine
    sample_every: int = 1  # periods between samples / quick evaluation
    checkpoint_every: int = 1  # periods between checkpoints
    device: str = "auto"  # auto | cpu | cuda
    progress: bool = True

    def __post_init__(self) -> None:
        if self.max_minutes < 0 or self.max_cpu_minutes < 0:
            raise ValueError("train.max_minutes and train.max_cpu_minutes must be >= 0")
        if self.sample_every < 1 or self.checkpoint_every < 1:
            raise ValueError("train.sample_every and train.checkpoint_every must be >= 1")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError("train.device must be auto, cpu or cuda")

    @property
    def periods(self) -> int:
        """How many periods the loop runs: each task's train section says."""
        raise NotImplementedError


@dataclass
class DataConfig:
    """The data section of the tasks that hold a small data set in memory (images, spoken digits)."""

    name: str = "mnist"
    path: str | None = None  # a folder to read instead of `name`: IDX files (images), label/xxx.wav (audio)
    batch_size: int = 128  # global batch: split across processes under torchrun
    limit: int = 0  # train on the first `limit` training examples only (0 = all); for tiny runs

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.limit < 0:
            raise ValueError("data.batch_size must be >= 1 and data.limit >= 0")


@dataclass
class SampleEvalConfig:
    """`genlab eval` of a model that draws images: how many samples the shipped evaluators score, in batches of."""

    num_samples: int = 10_000
    batch_size: int = 1000

    def __post_init__(self) -> None:
        if self.num_samples < 1 or self.batch_size < 1:
            raise ValueError("eval.num_samples and eval.batch_size must be >= 1")


@dataclass
class EpochTrainConfig(TrainConfig):
    """A loop over the data set: one period is one epoch."""

    epochs: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs < 1:
            raise ValueError("train.epochs must be >= 1")

    @property
    def periods(self) -> int:
        return self.epochs


@dataclass
class AdamWSchedule:
    """AdamW under linear warm-up and cosine decay: the optimiser settings the transformer tasks share
    (mixed into a TrainConfig; `check_schedule` is called by the TrainConfig's __post_init__)."""

    lr: float = 1e-3
    min_lr: float = 1e-4  # cosine decay ends here, at the last step
    warmup_iters: int = 100  # linear warm-up from 0 to lr, in optimiser steps
    betas: list[float] = dataclasses.field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.1  # AdamW, on weight matrices and embeddings only
    grad_clip: float = 1.0  # max global gradient norm (0 = off)

    def check_schedule(self) -> None:
        check_betas(self.betas)
        if not 0 <= self.min_lr <= self.lr or self.lr <= 0:
            raise ValueError("train needs 0 <= min_lr <= lr and lr > 0")
        if min(self.weight_decay, self.grad_clip, self.warmup_iters) < 0:
            raise ValueError("train.weight_decay, grad_clip and warmup_iters must be >= 0")


@dataclass
class OptimizerChoice:
    """A transformer's optimiser (mixed into a TrainConfig that calls `check_optimizer`): AdamW throughout, or
    Muon for the weight matrices inside the blocks with AdamW at `lr` for the rest (genlab.core.muon)."""

    optimizer: str = "adamw"  # adamw | muon
    muon_lr: float = 0.02  # Muon's peak learning rate (Keller Jordan's scale), on the same schedule as lr

    def check_optimizer(self) -> None:
        if self.optimizer not in ("adamw", "muon"):
            raise ValueError(f"train.optimizer must be adamw or muon, got {self.optimizer!r}")
        if not 0 < self.muon_lr < float("inf"):
            raise ValueError(f"train.muon_lr must be a finite number > 0, got {self.muon_lr}")


@dataclass
class StepTrainConfig(AdamWSchedule, TrainConfig):
    """A loop that draws its batches freely (token streams): one period is `eval_interval` optimiser steps."""

    max_iters: int = 2000  # optimiser steps in all
    eval_interval: int = 250  # steps between validations (one period of the loop); divides max_iters

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_schedule()
        if min(self.max_iters, self.eval_interval) < 1:
            raise ValueError("train.max_iters and eval_interval must be >= 1")
        if self.max_iters % self.eval_interval:
            raise ValueError(
                f"train.max_iters={self.max_iters} must be a multiple of train.eval_interval={self.eval_interval}"
            )

    @property
    def periods(self) -> int:
        return self.max_iters // self.eval_interval


@dataclass
class EpochAdamWTrainConfig(AdamWSchedule, EpochTrainConfig):
    """An epoch loop over a data set under AdamW (fine-tunes, chat): one period is one epoch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_schedule()


@dataclass
class TransformerSize:
    """The size of a decoder-only transformer: the model section the text, chat and music tasks share (each
    subclass sets its own defaults and adds its options)."""

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if min(self.n_layer, self.n_head, self.n_embd) < 1 or self.n_embd % self.n_head:
            raise ValueError("model.n_layer, n_head, n_embd must be >= 1 and n_embd divisible by n_head")
        if not 0 <= self.dropout < 1:
            raise ValueError("model.dropout must be in [0, 1)")

    def sizes(self) -> dict[str, Any]:
        """The four size fields, as genlab.models.transformer.TransformerConfig takes them."""
        return {"n_layer": self.n_layer, "n_head": self.n_head, "n_embd": self.n_embd, "dropout": self.dropout}


def recipe_type(task: str, **sections: type) -> type:
    """The recipe dataclass of task `task`, in the frame every recipe shares: `name`, `task` (defaulting to
    `task`), `seed`, then the task's `sections` in the order given (each a dataclass; left out of a
    recipe file, a section takes its defaults), then `tracking` (MLflow / W&B, docs/training.md).
    config.yaml lists the keys in this order."""
    fields: list[tuple[str, Any, Any]] = [
        ("name", str, dataclasses.field(default="experiment")),
        ("task", str, dataclasses.field(default=task)),
        ("seed", int, dataclasses.field(default=0)),
    ]
    fields += [(key, tp, dataclasses.field(default_factory=tp)) for key, tp in sections.items()]
    fields.append(("tracking", TrackingConfig, dataclasses.field(default_factory=TrackingConfig)))
    recipe = dataclasses.make_dataclass(task.title().replace("_", "") + "Recipe", fields)
    # Named after the module that made it (as collections.namedtuple does), so that it prints and pickles.
    recipe.__module__ = sys._getframe(1).f_globals.get("__name__", __name__)
    return recipe


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check_value(value: Any, tp: Any, key: str) -> Any:
    """Return value converted to tp (int or a float spelling -> float only), or raise GenlabError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            if option is type(None) and value is None:
                return None
            try:
                return _check_value(value, option, key)
            except GenlabError:
                continue
        raise GenlabError(f"recipe key '{key}' must be {_type_name(tp)}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise GenlabError(f"recipe key '{key}' must be a list, got {value!r}")
        return [_check_value(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        # YAML 1.1 reads "1e-3" (no dot) as a string: accept the float spellings people type.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise GenlabError(f"recipe key '{key}' must be a finite number, got {value!r}")
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        raise GenlabError(f"recipe key '{key}' must be {_type_name(tp)}, got {value!r}")
    if tp is int:  # in a type's real range: a step counter, a tensor size or a generator's seed
        (check_seed if key.rsplit(".", 1)[-1] == "seed" else check_int)(f"recipe key '{key}'", value)
    if tp is str:
        check_text(f"recipe key '{key}'", value)
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a nested dict, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise GenlabError(f"recipe section '{prefix.rstrip('.') or 'top level'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise GenlabError(f"unknown recipe key '{prefix}{unknown[0]}' (known: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in data.items():
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(tp, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _check_value(value, tp, prefix + key)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise GenlabError(f"bad recipe: {exc}") from None


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Apply `a.b=value` to a nested dict; the value is parsed as YAML (3 -> int, [a,b] -> list)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise GenlabError(f"override '{assignment}' must look like key.sub=value")
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise GenlabError(f"override '{assignment}': '{part}' is not a section")
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError:
        node[leaf] = raw  # not YAML: keep the text; the schema decides whether a string fits


def recipe_folders() -> list[Path]:
    """Where a recipe name is looked up, first match wins: $GENLAB_RECIPES's folders, then the shipped ones."""
    user = [Path(folder).expanduser() for folder in os.environ.get(RECIPES_ENV, "").split(os.pathsep) if folder]
    return [*user, SHIPPED_RECIPES]


def recipe_files() -> dict[str, Path]:
    """Every recipe a bare name can reach: name -> file, a user's folder hiding a shipped recipe of that name."""
    found: dict[str, Path] = {}
    for folder in recipe_folders():
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def resolve_recipe_path(name_or_path: str) -> Path:
    """A recipe file, or the name of one in $GENLAB_RECIPES or the shipped recipes (with or without .yaml).
    Only a bare name is looked up: a path that does not exist is an error, not another recipe."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    is_bare_name = path.name == name_or_path and path.suffix in ("", ".yaml")
    if not is_bare_name:
        raise GenlabError(f"recipe file {name_or_path} not found")
    known = recipe_files()
    if path.stem in known:
        return known[path.stem]
    close = difflib.get_close_matches(path.stem, known, n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise GenlabError(f"recipe '{name_or_path}' not found: {hint}(`genlab recipes` lists them)")


def recipe_purpose(path: Path) -> str:
    """What a recipe is for: its first `#` comment line (each shipped recipe opens with one), else ""."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def read_recipe_tree(name_or_path: str | Path, overrides: list[str] = ()) -> dict[str, Any]:
    """The recipe file (or shipped recipe) as a nested dict, with `key.sub=value` overrides applied.
    A recipe without `name:` is named after its file, so its run goes to runs/<file stem> by default."""
    path = resolve_recipe_path(str(name_or_path))
    tree = read_yaml(path, "recipe") or {}
    if not isinstance(tree, dict):
        raise GenlabError(f"recipe {path} must be a YAML mapping")
    tree.setdefault("name", path.stem)
    for assignment in overrides:
        apply_override(tree, assignment)
    return tree


def resolve_relative_paths(tree: dict[str, Any], keys: tuple[str, ...], recipe: str | Path) -> None:
    """Recipe keys that name a file or folder (`start: runs/bpe-gpt-bible`), relative ones resolved in place:
    the current directory first, then the folder of a recipe file the user gave (never the shipped recipes'
    folder). A value with a path separator found in neither place fails here, naming both paths tried;
    a bare word (`start: minilm`) found in neither is left for its task to read."""
    recipe_path = resolve_recipe_path(str(recipe))
    beside = [] if recipe_path.parent == SHIPPED_RECIPES else [recipe_path.parent]
    for key in keys:
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        value = node.get(leaf) if isinstance(node, dict) else None
        if not isinstance(value, str) or not value or Path(value).expanduser().is_absolute():
            continue
        tried = [Path.cwd() / value] + [folder.resolve() / value for folder in beside]
        found = next((path for path in tried if path.exists()), None)
        if found is None and any(sep in value for sep in ("/", os.sep)):
            raise GenlabError(
                f"recipe key '{key}': {value} not found (tried {' and '.join(str(path) for path in tried)}); "
                "a relative path is looked up in the current directory, then beside the recipe file"
            )
        if found is not None and found != tried[0]:
            node[leaf] = str(found)


def recipe_to_dict(recipe: Any) -> dict[str, Any]:
    return dataclasses.asdict(recipe)
