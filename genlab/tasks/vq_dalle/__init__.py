"""`task: vq_dalle` — images from captions, DALL-E style: a VQGAN run's 7x7 image tokens written one by
one by the shared causal transformer after the caption's word tokens, with classifier-free guidance on
the logits, top-k / temperature sampling and a KV cache."""

from genlab.tasks.contract import Task
from genlab.tasks.vq_dalle.handle import VQDalleRun
from genlab.tasks.vq_dalle.recipe import VQDalleRecipe
from genlab.tasks.vq_dalle.report import compare_row
from genlab.tasks.vq_dalle.tiny import tiny_run
from genlab.tasks.vq_dalle.training import VQDalleTraining

TASK = Task(
    recipe_type=VQDalleRecipe,
    training=VQDalleTraining,
    open=VQDalleRun,
    tiny=tiny_run,
    compare_row=compare_row,
    path_keys=("data.tokenizer",),
)
