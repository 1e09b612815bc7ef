"""The recipe schema of a chorale run (`task: chorale`): Bach's four-part chorales on a 16th-note grid, the
four voices interleaved per step, genlab's causal transformer (the model and optimiser sections are the folk
task's: the same network, the same schedule).

A batch is `data.batch_size` windows of `data.window_bars` bars (64 tokens a bar), each starting on a bar line
of a random chorale behind its mode token, so the run is counted in optimiser steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from genlab.core.recipe import recipe_type
from genlab.tasks.folk.recipe import FolkModelConfig, FolkTrainConfig


@dataclass
class ChoraleDataConfig:
    path: str | None = None  # a folder (or file) of four-part MusicXML to read instead of music21's Bach corpus
    window_bars: int = 4  # bars a training window holds: the model's context is 1 + 64 x window_bars tokens
    batch_size: int = 16  # windows per optimizer step

    def __post_init__(self) -> None:
        if not 1 <= self.window_bars <= 32 or self.batch_size < 1:
            raise ValueError("data.window_bars must be in [1, 32] and data.batch_size >= 1")

    @property
    def block_size(self) -> int:
        return 1 + 64 * self.window_bars


@dataclass
class ChoraleEvalConfig:
    num_samples: int = 16  # chorales `genlab eval` generates (modes alternate major, minor)
    bars: int = 16  # the length of each
    temperature: float = 1.0
    top_k: int = 0  # 0 = off

    def __post_init__(self) -> None:
        if self.num_samples < 1 or not 1 <= self.bars <= 256 or self.temperature <= 0 or self.top_k < 0:
            raise ValueError("eval.num_samples >= 1, eval.bars in [1, 256], eval.temperature > 0, eval.top_k >= 0")


ChoraleRecipe = recipe_type(
    "chorale", data=ChoraleDataConfig, model=FolkModelConfig, train=FolkTrainConfig, eval=ChoraleEvalConfig
)
