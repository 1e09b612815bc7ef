"""`task: chat` — a small chat model: supervised fine-tuning on conversations, loss on the assistant's turns."""

from genlab.tasks.chat.handle import ChatRun
from genlab.tasks.chat.recipe import ChatRecipe
from genlab.tasks.chat.report import compare_row
from genlab.tasks.chat.tiny import tiny_run
from genlab.tasks.chat.training import ChatTraining
from genlab.tasks.contract import Task

TASK = Task(recipe_type=ChatRecipe, training=ChatTraining, open=ChatRun, tiny=tiny_run, compare_row=compare_row)
