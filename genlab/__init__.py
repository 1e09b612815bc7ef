"""genlab: pretrain -> fine-tune -> evaluate -> generate and serve, for small generative models.

import genlab
model = genlab.load("runs/demo")   # any run directory
model.generate(n=16)               # images, text or labels, by the run's task
"""

import importlib
from typing import Any

from genlab.version import __version__

__all__ = ["TASKS", "__version__", "fit", "load", "train"]

# The API and the registry import torch (about a second): they load on first use, so `import genlab`
# and `genlab --version` stay quick.
_LOADED_ON_USE = {"fit": "genlab.api", "load": "genlab.api", "train": "genlab.api", "TASKS": "genlab.tasks"}


def __getattr__(name: str) -> Any:
    if name not in _LOADED_ON_USE:
        raise AttributeError(f"module 'genlab' has no attribute {name!r}")
    return getattr(importlib.import_module(_LOADED_ON_USE[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
