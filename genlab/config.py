"""Typed recipes: dataclasses loaded from YAML, `key.sub=value` overrides, unknown keys rejected.

A recipe file is one reproducible experiment. Every section is a dataclass whose fields carry types;
`from_dict` checks each value against its field's type so a typo or a wrong type fails with one
line naming the key, before anything is trained.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genlab.errors import GenlabError
from genlab.models.gan import GANConfig


@dataclass
class DataConfig:
    name: str = "mnist"
    path: str | None = None  # a folder of IDX files, instead of searching for `name`
    batch_size: int = 128  # global batch: split across processes under torchrun
    limit: int = 0  # train on the first `limit` training images only (0 = all); for tiny runs

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.limit < 0:
            raise ValueError("data.batch_size must be >= 1 and data.limit >= 0")


@dataclass
class TrainConfig:
    """What every task's training loop needs; tasks extend it with their optimiser settings."""

    epochs: int = 100
    max_minutes: float = 0.0  # stop after this wall-clock budget (0 = no budget)
    sample_every: int = 1  # epochs between samples / quick evaluation
    checkpoint_every: int = 1  # epochs between checkpoints
    device: str = "auto"  # auto | cpu | cuda
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("train.epochs must be >= 1")
        if self.max_minutes < 0:
            raise ValueError("train.max_minutes must be >= 0")
        if self.sample_every < 1 or self.checkpoint_every < 1:
            raise ValueError("train.sample_every and train.checkpoint_every must be >= 1")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError("train.device must be auto, cpu or cuda")


@dataclass
class GanTrainConfig(TrainConfig):
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    r1_gamma: float = 0.0  # weight of the R1 gradient penalty on real data (0 = off)
    augment_shift: int = 0  # DiffAugment: translate D's inputs (real and fake) by up to this many pixels

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError("train.betas must be two numbers in [0, 1)")
        if min(self.lr_g, self.lr_d) <= 0 or min(self.r1_gamma, self.augment_shift) < 0:
            raise ValueError("train learning rates must be > 0; r1_gamma and augment_shift >= 0")


@dataclass
class EvalConfig:
    num_samples: int = 10_000
    batch_size: int = 1000

    def __post_init__(self) -> None:
        if self.num_samples < 1 or self.batch_size < 1:
            raise ValueError("eval.num_samples and eval.batch_size must be >= 1")


@dataclass
class GanRecipe:
    name: str = "experiment"
    task: str = "gan"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: GANConfig = field(default_factory=GANConfig)
    train: GanTrainConfig = field(default_factory=GanTrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# task name -> its recipe schema; a recipe's top-level `task:` key picks one (default gan)
RECIPE_TYPES: dict[str, type] = {"gan": GanRecipe}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check_value(value: Any, tp: Any, key: str) -> Any:
    """Return value converted to tp (int -> float only), or raise GenlabError."""
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
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        raise GenlabError(f"recipe key '{key}' must be {_type_name(tp)}, got {value!r}")
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
    """Apply `a.b=value` to a nested dict; the value is parsed as YAML (3 -> int, 1e-3 -> float)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise GenlabError(f"override '{assignment}' must look like key.sub=value")
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise GenlabError(f"override '{assignment}': '{part}' is not a section")
    value = yaml.safe_load(raw)
    # YAML reads "1e-3" as a string; accept the common float spellings people type.
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    node[leaf] = value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise GenlabError(f"cannot read recipe {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise GenlabError(f"recipe {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(tree, dict):
        raise GenlabError(f"recipe {path} must be a YAML mapping")
    return tree


def resolve_recipe_path(name_or_path: str) -> Path:
    """A path, or the name of a recipe shipped in recipes/ (with or without .yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = Path(__file__).resolve().parent.parent / "recipes" / f"{path.stem}.yaml"
    if shipped.is_file():
        return shipped
    raise GenlabError(f"recipe '{name_or_path}' not found (no such file, and not in recipes/)")


def recipe_from_tree(tree: dict[str, Any]) -> Any:
    """The typed recipe for a nested dict, by its `task` key."""
    task = tree.get("task", "gan")
    if task not in RECIPE_TYPES:
        raise GenlabError(f"unknown task '{task}' (known: {', '.join(RECIPE_TYPES)})")
    return from_dict(RECIPE_TYPES[task], tree)


def load_recipe(name_or_path: str | Path, overrides: list[str] = ()) -> Any:
    tree = _read_yaml(resolve_recipe_path(str(name_or_path)))
    for assignment in overrides:
        apply_override(tree, assignment)
    return recipe_from_tree(tree)


def recipe_to_dict(recipe: Any) -> dict[str, Any]:
    return dataclasses.asdict(recipe)
