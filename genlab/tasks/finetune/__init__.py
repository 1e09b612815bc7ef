"""`task: finetune` — a pretrained transformer + task head, trained fully, top layers only, LoRA or adapters."""

from genlab.tasks.contract import Task
from genlab.tasks.finetune.handle import FinetuneRun
from genlab.tasks.finetune.recipe import FinetuneRecipe
from genlab.tasks.finetune.report import compare_row
from genlab.tasks.finetune.tiny import tiny_run
from genlab.tasks.finetune.training import FinetuneTraining

TASK = Task(
    recipe_type=FinetuneRecipe,
    training=FinetuneTraining,
    open=FinetuneRun,
    tiny=tiny_run,
    compare_row=compare_row,
    path_keys=("start",),
)
