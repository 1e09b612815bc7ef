"""genlab: pretrain -> fine-tune -> evaluate -> generate and serve, for small generative models.

import genlab
model = genlab.load("runs/demo")   # any run directory
model.generate(n=16)               # images, text or labels, by the run's task
"""

from genlab.api import fit, load, train
from genlab.tasks import TASKS

__version__ = "0.2.0"
__all__ = ["TASKS", "fit", "load", "train"]
