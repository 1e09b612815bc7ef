"""`task: chorale` — Bach's four-part chorales on a 16th-note grid, the four voices interleaved per step, on
genlab's causal transformer: new chorales in a mode and key, or the harmonisation of a soprano melody; written as
MIDI, MusicXML, WAV and piano rolls."""

from genlab.tasks.chorale.handle import ChoraleRun
from genlab.tasks.chorale.recipe import ChoraleRecipe
from genlab.tasks.chorale.report import compare_row
from genlab.tasks.chorale.tiny import tiny_run
from genlab.tasks.chorale.training import ChoraleTraining
from genlab.tasks.contract import Task

TASK = Task(
    recipe_type=ChoraleRecipe,
    training=ChoraleTraining,
    open=ChoraleRun,
    tiny=tiny_run,
    compare_row=compare_row,
    path_keys=("data.path",),
)
