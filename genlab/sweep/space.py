"""The search space file: what to optimise, how to sample, when to prune, and the recipe keys searched.

    objective: {metric: val/loss, direction: minimize}
    sampler: tpe            # tpe (default) | random | grid, or {type: tpe, n_startup_trials: 10}
    seed: 0                 # the sampler's seed (default 0)
    pruner: {type: median, n_startup_trials: 5, n_warmup_steps: 0}   # or `pruner: none`
    params:
      train.lr: {type: float, low: 1.0e-4, high: 3.0e-2, log: true}
      train.warmup_iters: {type: int, low: 0, high: 200, step: 50}
      model.n_embd: {type: categorical, choices: [64, 128]}

Everything is checked before a trial runs: each param is applied to the recipe as an override and the
recipe typed by its task's schema, so a misspelt key or a value of the wrong type fails in one line.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genlab.core.recipe import apply_override
from genlab.errors import GenlabError
from genlab.io.files import read_yaml
from genlab.tasks import recipe_from_tree

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
DISTRIBUTIONS = ("float", "int", "categorical")
GRID_MAX_POINTS = 10_000  # an int range enumerated for the grid sampler: beyond this it is surely a mistake


@dataclass
class Param:
    key: str  # a recipe key in override syntax, e.g. train.lr
    type: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: int | None = None
    choices: list[Any] = field(default_factory=list)

    def values_to_check(self) -> list[Any]:
        """The values whose types the recipe schema must accept: both ends of a range, every choice."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]

    def grid_values(self) -> list[Any]:
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, self.step or 1))
        raise GenlabError(f"param '{self.key}': the grid sampler needs categorical or int params, not float")


@dataclass
class Space:
    metric: str
    direction: str  # minimize | maximize
    sampler: str
    seed: int
    tpe_startup_trials: int  # TPE samples at random until this many trials have finished
    pruner: str
    n_startup_trials: int
    n_warmup_steps: int
    params: list[Param]

    def as_dict(self) -> dict[str, Any]:
        """A plain form, stored with the study so that resuming with another space file is refused."""
        return json.loads(json.dumps(self, default=lambda o: o.__dict__))


def format_value(value: Any) -> str:
    """A sampled value as the text of a `key=value` override that reads back as the same value."""
    if isinstance(value, str):
        return value if yaml.safe_load(value) == value else json.dumps(value)
    return json.dumps(value)  # JSON is YAML: 0.001, 1e-05, true, [0.9, 0.99]


def _number(spec: dict[str, Any], name: str, where: str, integer: bool) -> float | int:
    value = spec.get(name)
    wanted = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted) or not math.isfinite(value):
        raise GenlabError(f"{where}: '{name}' must be {'an integer' if integer else 'a number'}, got {value!r}")
    return value


def _param(key: Any, spec: Any, path: Path) -> Param:
    where = f"space file {path}: param '{key}'"
    if not isinstance(key, str) or not key or "=" in key or key.startswith(".") or key.endswith("."):
        raise GenlabError(f"space file {path}: param names are recipe keys such as train.lr, got {key!r}")
    if not isinstance(spec, dict):
        raise GenlabError(f"{where} must be a mapping such as {{type: float, low: 0.0001, high: 0.01}}")
    kind = spec.get("type")
    if kind not in DISTRIBUTIONS:
        raise GenlabError(f"{where}: unknown distribution type {kind!r} (known: {', '.join(DISTRIBUTIONS)})")
    allowed = {
        "float": {"type", "low", "high", "log", "step"},
        "int": {"type", "low", "high", "log", "step"},
        "categorical": {"type", "choices"},
    }[kind]
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise GenlabError(f"{where}: unknown setting '{unknown[0]}' for a {kind} (known: {', '.join(sorted(allowed))})")
    if kind == "categorical":
        return Param(key, kind, choices=_choices(spec, where))
    return _range(key, kind, spec, where)


def _choices(spec: dict[str, Any], where: str) -> list[Any]:
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise GenlabError(f"{where}: 'choices' must be a non-empty list")
    # Optuna stores choices as JSON scalars; a list value (betas) would not round-trip through storage.
    if not all(c is None or isinstance(c, (bool, int, float, str)) for c in choices):
        raise GenlabError(f"{where}: choices must be numbers, strings or booleans")
    return choices


def _range(key: str, kind: str, spec: dict[str, Any], where: str) -> Param:
    integer = kind == "int"
    low, high = _number(spec, "low", where, integer), _number(spec, "high", where, integer)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise GenlabError(f"{where}: 'log' must be true or false, got {log!r}")
    if low >= high:
        raise GenlabError(f"{where}: low ({low}) must be less than high ({high})")
    if log and low <= 0:
        raise GenlabError(f"{where}: a log scale needs low > 0, got low={low}")
    step = spec.get("step")
    if step is not None:
        if log:
            raise GenlabError(f"{where}: 'step' and 'log: true' cannot be used together")
        step = _number(spec, "step", where, integer)
        if step <= 0:
            raise GenlabError(f"{where}: 'step' must be > 0, got {step}")
    return Param(key, kind, low=low, high=high, log=log, step=step)


def _pruner(raw: Any, path: Path) -> tuple[str, int, int]:
    spec = {"type": raw} if raw is None or isinstance(raw, str) else raw
    if not isinstance(spec, dict):
        raise GenlabError(f"space file {path}: 'pruner' must be median, none or a mapping with a type")
    kind = spec.get("type") or "median"
    if kind not in PRUNERS:
        raise GenlabError(f"space file {path}: unknown pruner {kind!r} (known: {', '.join(PRUNERS)})")
    unknown = sorted(set(spec) - {"type", "n_startup_trials", "n_warmup_steps"})
    if unknown:
        raise GenlabError(f"space file {path}: unknown pruner setting '{unknown[0]}'")
    counts = []
    for name, default in (("n_startup_trials", 5), ("n_warmup_steps", 0)):
        value = spec.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise GenlabError(f"space file {path}: pruner '{name}' must be an integer >= 0, got {value!r}")
        counts.append(value)
    return kind, counts[0], counts[1]


def _objective(raw: dict[str, Any], path: Path) -> tuple[str, str]:
    """(metric, direction)."""
    objective = raw.get("objective")
    if not isinstance(objective, dict) or not isinstance(objective.get("metric"), str) or not objective["metric"]:
        raise GenlabError(
            f"space file {path}: 'objective' must be a mapping with a metric, e.g. "
            "{metric: val/loss, direction: minimize}"
        )
    direction = objective.get("direction", "minimize")
    if direction not in ("minimize", "maximize") or set(objective) - {"metric", "direction"}:
        raise GenlabError(f"space file {path}: objective has metric and direction (minimize or maximize) only")
    return objective["metric"], direction


def _sampler(raw: dict[str, Any], path: Path) -> tuple[str, int]:
    """(sampler, TPE's random start-up trials)."""
    spec = raw.get("sampler", "tpe")
    spec = {"type": spec} if isinstance(spec, str) else spec
    if not isinstance(spec, dict) or set(spec) - {"type", "n_startup_trials"}:
        raise GenlabError(
            f"space file {path}: 'sampler' must be tpe, random, grid or {{type: tpe, n_startup_trials: N}}"
        )
    sampler = spec.get("type", "tpe")
    if sampler not in SAMPLERS:
        raise GenlabError(f"space file {path}: unknown sampler {sampler!r} (known: {', '.join(SAMPLERS)})")
    tpe_startup = spec.get("n_startup_trials", 10)
    if isinstance(tpe_startup, bool) or not isinstance(tpe_startup, int) or tpe_startup < 0:
        raise GenlabError(f"space file {path}: sampler 'n_startup_trials' must be an integer >= 0")
    return sampler, tpe_startup


def _check_grid(params: list[Param], path: Path) -> None:
    points = 1
    for param in params:
        try:
            points *= len(param.grid_values())
        except GenlabError as exc:
            raise GenlabError(f"space file {path}: {exc}") from None
    if points > GRID_MAX_POINTS:
        raise GenlabError(f"space file {path}: the grid has {points} points, more than {GRID_MAX_POINTS}")


def read_space(path: str | Path) -> Space:
    """Read and check a space file on its own (the recipe check is check_against_recipe)."""
    path = Path(path)
    raw = read_yaml(path, "space file")
    if not isinstance(raw, dict):
        raise GenlabError(f"space file {path} must be a YAML mapping with objective and params")
    unknown = sorted(set(raw) - {"objective", "sampler", "pruner", "params", "seed"})
    if unknown:
        raise GenlabError(
            f"space file {path}: unknown key '{unknown[0]}' (known: objective, params, pruner, sampler, seed)"
        )
    metric, direction = _objective(raw, path)
    sampler, tpe_startup = _sampler(raw, path)
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise GenlabError(f"space file {path}: 'seed' must be an integer >= 0, got {seed!r}")
    params = raw.get("params")
    if not isinstance(params, dict) or not params:
        raise GenlabError(f"space file {path}: 'params' must map recipe keys to distributions")
    pruner, n_startup, n_warmup = _pruner(raw.get("pruner", "median"), path)
    checked = [_param(key, spec, path) for key, spec in params.items()]
    if sampler == "grid":
        _check_grid(checked, path)
    return Space(metric, direction, sampler, seed, tpe_startup, pruner, n_startup, n_warmup, checked)


def check_against_recipe(space: Space, tree: dict[str, Any], path: str | Path) -> None:
    """Every param must be a key of the recipe's schema that takes each value of its range."""
    for param in space.params:
        for value in param.values_to_check():
            trial_tree = copy.deepcopy(tree)
            try:
                apply_override(trial_tree, f"{param.key}={format_value(value)}")
                recipe_from_tree(trial_tree)
            except GenlabError as exc:
                raise GenlabError(f"space file {path}: param '{param.key}' = {value!r}: {exc}") from None
