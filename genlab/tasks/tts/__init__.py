"""`task: tts` — text in a human voice: espeak-ng says the text, a converter turns its frames into Allison's,
a vocoder (WORLD, or Griffin-Lim) makes the waveform; the same converter turns a recording of another voice
into hers."""

from genlab.tasks.contract import Task
from genlab.tasks.tts.handle import SpeechRun
from genlab.tasks.tts.recipe import SpeechRecipe
from genlab.tasks.tts.report import compare_row
from genlab.tasks.tts.tiny import tiny_run
from genlab.tasks.tts.training import SpeechTraining

TASK = Task(recipe_type=SpeechRecipe, training=SpeechTraining, open=SpeechRun, tiny=tiny_run, compare_row=compare_row)
