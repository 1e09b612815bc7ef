"""The Python API: `genlab.load(run)` opens any run; `genlab.train(recipe, ...)` makes one.

    import genlab
    model = genlab.train("essay-mlp-mnist", out="runs/essay", train={"epochs": 3})
    model = genlab.load("runs/essay")                       # any task: gan, lm, finetune, ...
    model.generate(n=16, seed=0).save("grid.png")           # images; text runs: model.generate("And God said")
    model.evaluate()                                         # writes its section of report.json
    model.export("essay.onnx")                               # its network as ONNX, checked by onnxruntime
    model.report["cost"], model.recipe.train

The CLI (genlab.cli) and the HTTP server are thin layers over these functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genlab.core.recipe import apply_override, read_recipe_tree, resolve_relative_paths
from genlab.core.run import RunDir
from genlab.core.threads import configure_threads
from genlab.core.trainer import PeriodCallback
from genlab.errors import GenlabError
from genlab.io.validate import environ_int
from genlab.tasks import get_task, recipe_from_tree, task_of_run, task_of_tree
from genlab.tasks.contract import RunHandle
from genlab.tasks.launch import train_run


def load(run: str | Path, checkpoint: str = "last") -> RunHandle:
    """Open a run directory for use: a handle with .generate, .evaluate, .export, .report and .recipe.

    `checkpoint` is "last" or "best" (the period with the best quick score, where the task keeps one).
    """
    configure_threads()
    run_dir = RunDir(run)
    task = task_of_run(run_dir)
    return task.open(run_dir, task.recipe(run_dir.read_config()), checkpoint)


def _merge(tree: dict[str, Any], settings: dict[str, Any], prefix: str = "") -> None:
    """Recipe settings given as nested keyword arguments (train={"epochs": 3}) into the recipe tree."""
    for key, value in settings.items():
        if isinstance(value, dict):
            node = tree.setdefault(key, {})
            if not isinstance(node, dict):
                raise GenlabError(f"recipe key '{prefix}{key}' is not a section")
            _merge(node, value, f"{prefix}{key}.")
        else:
            tree[key] = value


def fit(
    recipe: str | Path,
    out: str | Path | None = None,
    overrides: list[str] = (),
    resume: bool = False,
    on_period: PeriodCallback | None = None,
    **settings: Any,
) -> tuple[Path, dict[str, Any]]:
    """Train a recipe into `out` (default runs/<recipe name>), or with resume=True continue the run in
    `recipe`'s place; returns the run directory and its report. What `genlab train` calls.
    `on_period(step, metrics)` is called after each period (a sweep's pruning hook)."""
    if resume:
        run_path = Path(recipe)
        tree = RunDir(run_path).read_config()
        if out is not None and Path(out) != run_path:
            raise GenlabError("--out and --resume RUN name two run directories: drop --out")
    else:
        configure_threads()  # a resumed run takes the count its checkpoint recorded (Trainer.resume)
        tree = read_recipe_tree(recipe)
    for assignment in overrides:
        apply_override(tree, assignment)
    _merge(tree, settings)
    if not resume:  # a run's config.yaml holds the paths its training used
        resolve_relative_paths(tree, task_of_tree(tree).path_keys, recipe)
    typed = recipe_from_tree(tree)
    task = get_task(typed.task)
    if not resume:
        run_path = Path(out) if out is not None else Path("runs") / typed.name
    return run_path, train_run(task, typed, run_path, resume=resume, on_period=on_period)


def train(
    recipe: str | Path, out: str | Path | None = None, overrides: list[str] = (), resume: bool = False, **settings: Any
) -> RunHandle | None:
    """Train a recipe (a shipped name such as "essay-mlp-mnist", or a YAML file) and open the run.

    Settings override the recipe as nested keywords, `train={"epochs": 3}`, or as `overrides`,
    ["train.epochs=3"] (the CLI's syntax). Under torchrun only the main process gets the handle.
    """
    run_path, _ = fit(recipe, out, overrides, resume, **settings)
    return load(run_path) if environ_int("RANK", 0) == 0 else None
