"""`task: lm` — language-model pretraining: GPT (causal) or BERT (masked) on text corpora."""

from genlab.tasks.contract import Task
from genlab.tasks.lm.handle import LMRun
from genlab.tasks.lm.recipe import LMRecipe, upgrade_tree
from genlab.tasks.lm.report import compare_row
from genlab.tasks.lm.tiny import tiny_run
from genlab.tasks.lm.training import LMTraining

TASK = Task(
    recipe_type=LMRecipe, training=LMTraining, open=LMRun, tiny=tiny_run, compare_row=compare_row, upgrade=upgrade_tree
)
