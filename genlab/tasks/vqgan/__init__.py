"""`task: vqgan` — a vector-quantised autoencoder (VQGAN): 28x28 images <-> 7x7 grids of codebook tokens,
trained with reconstruction, commitment, feature-matching and patch-GAN losses."""

from genlab.tasks.contract import Task
from genlab.tasks.vqgan.handle import VQGANRun
from genlab.tasks.vqgan.recipe import VQGANRecipe
from genlab.tasks.vqgan.report import compare_row
from genlab.tasks.vqgan.tiny import tiny_run
from genlab.tasks.vqgan.training import VQGANTraining

TASK = Task(recipe_type=VQGANRecipe, training=VQGANTraining, open=VQGANRun, tiny=tiny_run, compare_row=compare_row)
