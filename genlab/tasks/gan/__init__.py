"""`task: gan` — image GANs: the essay's MLP pair, DCGAN, class-conditional; R1, EMA, DiffAugment."""

from genlab.tasks.contract import Task
from genlab.tasks.gan.handle import GanRun
from genlab.tasks.gan.recipe import GanRecipe
from genlab.tasks.gan.report import compare_row
from genlab.tasks.gan.tiny import tiny_run
from genlab.tasks.gan.training import GanTraining

TASK = Task(recipe_type=GanRecipe, training=GanTraining, open=GanRun, tiny=tiny_run, compare_row=compare_row)
