"""`task: finetune` — a pretrained transformer + task head, trained fully, top layers only, LoRA or adapters."""
from genlab.core.task import Task
from genlab.tasks.finetune.recipe import FinetuneRecipe
from genlab.tasks.finetune.report import compare_row
from genlab.tasks.finetune.run import FinetuneRun
from genlab.tasks.finetune.task import FinetuneTraining
from genlab.tasks.finetune.tiny import tiny_run

TASK = Task(name="finetune", recipe_type=FinetuneRecipe, training=FinetuneTraining, open=FinetuneRun,
            eval_section="test", tiny=tiny_run, compare_row=compare_row)
