"""`task: audio` — a class-conditional GAN that says a digit: log-mel spectrograms, Griffin-Lim waveforms."""

from genlab.tasks.audio.handle import AudioRun
from genlab.tasks.audio.recipe import AudioRecipe
from genlab.tasks.audio.report import compare_row
from genlab.tasks.audio.tiny import tiny_run
from genlab.tasks.audio.training import AudioTraining
from genlab.tasks.contract import Task

TASK = Task(recipe_type=AudioRecipe, training=AudioTraining, open=AudioRun, tiny=tiny_run, compare_row=compare_row)
