"""`task: image_classifier` — a small CNN trained standard or adversarially (FGSM with random start, PGD),
judged by its accuracy under L-inf attack (genlab.evaluation.adversarial)."""

from genlab.tasks.contract import Task
from genlab.tasks.image_classifier.handle import ClassifierRun
from genlab.tasks.image_classifier.recipe import ClassifierRecipe
from genlab.tasks.image_classifier.report import compare_row
from genlab.tasks.image_classifier.tiny import tiny_run
from genlab.tasks.image_classifier.training import ClassifierTraining

TASK = Task(
    recipe_type=ClassifierRecipe,
    training=ClassifierTraining,
    open=ClassifierRun,
    tiny=tiny_run,
    compare_row=compare_row,
)
