"""`task: folk` — folk tunes (O'Neill's and Ryan's fiddle tunes) as event tokens on genlab's causal transformer,
conditioned on metre, mode and tune type; written as ABC, MIDI, MusicXML, WAV and piano rolls."""

from genlab.tasks.contract import Task
from genlab.tasks.folk.handle import FolkRun
from genlab.tasks.folk.recipe import FolkRecipe
from genlab.tasks.folk.report import compare_row
from genlab.tasks.folk.tiny import tiny_run
from genlab.tasks.folk.training import FolkTraining

TASK = Task(
    recipe_type=FolkRecipe,
    training=FolkTraining,
    open=FolkRun,
    tiny=tiny_run,
    compare_row=compare_row,
    path_keys=("data.path",),
)
