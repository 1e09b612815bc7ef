"""The registry of tasks: the one list of the kinds of run genlab knows.

Adding a task = one folder `genlab/tasks/<name>/` exporting `TASK` + one line here (docs/adding-a-task.md).
Everything else (the CLI, `genlab.load`, the contract test) asks this registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genlab.core.recipe import read_recipe_tree
from genlab.core.run import RunDir
from genlab.errors import GenlabError
from genlab.tasks import (
    audio,
    chat,
    chorale,
    finetune,
    flow,
    folk,
    gan,
    image_classifier,
    lm,
    pix2pix,
    translation,
    tts,
    video,
    vq_dalle,
    vqgan,
)
from genlab.tasks.contract import Task

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        gan.TASK,
        lm.TASK,
        finetune.TASK,
        audio.TASK,
        image_classifier.TASK,
        flow.TASK,
        folk.TASK,
        chorale.TASK,
        video.TASK,
        pix2pix.TASK,
        vqgan.TASK,
        vq_dalle.TASK,
        tts.TASK,
        translation.TASK,
        chat.TASK,
    )
}
DEFAULT_TASK = "gan"  # a recipe without `task:` (the essay's GAN recipes predate the key)


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise GenlabError(f"unknown task '{name}' (known: {', '.join(TASKS)})")
    return TASKS[name]


def task_of_tree(tree: dict[str, Any]) -> Task:
    """The task a recipe's nested dict names by its `task:` key."""
    return get_task(str(tree.get("task", DEFAULT_TASK)))


def recipe_from_tree(tree: dict[str, Any]) -> Any:
    """The typed recipe of a nested dict, read by the schema of the task its `task:` key names."""
    return task_of_tree(tree).recipe(tree)


def load_recipe(name_or_path: str | Path, overrides: list[str] = ()) -> Any:
    """A recipe file or shipped recipe name, with `key.sub=value` overrides, typed and validated."""
    return recipe_from_tree(read_recipe_tree(name_or_path, list(overrides)))


def task_of_run(run: RunDir) -> Task:
    return get_task(str(run.read_config().get("task", DEFAULT_TASK)))
