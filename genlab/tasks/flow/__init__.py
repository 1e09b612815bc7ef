"""`task: flow` — flow-matching images: a U-Net trained on the straight noise-to-data path, Euler
sampling with classifier-free guidance, image-to-image editing and inpainting."""

from genlab.tasks.contract import Task
from genlab.tasks.flow.handle import FlowRun
from genlab.tasks.flow.recipe import FlowRecipe
from genlab.tasks.flow.report import compare_row
from genlab.tasks.flow.tiny import tiny_run
from genlab.tasks.flow.training import FlowTraining

TASK = Task(recipe_type=FlowRecipe, training=FlowTraining, open=FlowRun, tiny=tiny_run, compare_row=compare_row)
