"""`task: pix2pix` — image-to-image translation of glyphs: pix2pix (U-Net + PatchGAN, L1 + adversarial) from
a source font to target fonts, with zi2zi's font embedding so one model draws several fonts, and few-shot
fine-tuning (full or LoRA) to a font it has never seen."""

from genlab.tasks.contract import Task
from genlab.tasks.pix2pix.handle import Pix2PixRun
from genlab.tasks.pix2pix.recipe import Pix2PixRecipe
from genlab.tasks.pix2pix.report import compare_row
from genlab.tasks.pix2pix.tiny import tiny_run
from genlab.tasks.pix2pix.training import Pix2PixTraining

TASK = Task(
    recipe_type=Pix2PixRecipe,
    training=Pix2PixTraining,
    open=Pix2PixRun,
    tiny=tiny_run,
    compare_row=compare_row,
    path_keys=("train.init",),
)
