"""`task: video` — Moving-MNIST clips from one masked-frame flow-matching network: predict the next 10
frames, fill in the frames between a first and a last, or generate a clip of two named digits."""

from genlab.tasks.contract import Task
from genlab.tasks.video.handle import VideoRun
from genlab.tasks.video.recipe import VideoRecipe
from genlab.tasks.video.report import compare_row
from genlab.tasks.video.tiny import tiny_run
from genlab.tasks.video.training import VideoTraining

TASK = Task(recipe_type=VideoRecipe, training=VideoTraining, open=VideoRun, tiny=tiny_run, compare_row=compare_row)
