"""`task: translation` — an encoder-decoder transformer trained on verse-aligned Bibles, split by book."""

from genlab.tasks.contract import Task
from genlab.tasks.translation.handle import TranslationRun
from genlab.tasks.translation.recipe import TranslationRecipe
from genlab.tasks.translation.report import compare_row
from genlab.tasks.translation.tiny import tiny_run
from genlab.tasks.translation.training import TranslationTraining

TASK = Task(
    recipe_type=TranslationRecipe,
    training=TranslationTraining,
    open=TranslationRun,
    tiny=tiny_run,
    compare_row=compare_row,
)
