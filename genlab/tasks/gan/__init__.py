"""`task: gan` — image GANs: the essay's MLP pair, DCGAN, class-conditional; R1, EMA, DiffAugment."""
from genlab.core.task import Task
from genlab.tasks.gan.recipe import GanRecipe
from genlab.tasks.gan.report import compare_row
from genlab.tasks.gan.run import GanRun
from genlab.tasks.gan.task import GanTraining
from genlab.tasks.gan.tiny import tiny_run

TASK = Task(name="gan", recipe_type=GanRecipe, training=GanTraining.build, open=GanRun, eval_section="quality",
            tiny=tiny_run, compare_row=compare_row)
