"""The recipe schema of a folk-tune run (`task: folk`): event tokens of real tunes, genlab's causal transformer.

Batches are whole tunes (header first, padded or cut to `data.block_size` tokens) drawn at random, so the run is
counted in optimiser steps: `train.max_iters` in all, a validation loss and sample tunes every
`train.eval_interval` steps (one period of the trainer loop).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genlab.core.recipe import OptimizerChoice, StepTrainConfig, TransformerSize, recipe_type
from genlab.data.folk import CORPORA


@dataclass
class FolkDataConfig:
    corpus: list[str] = field(default_factory=lambda: list(CORPORA))  # music21 corpus folders of ABC tunes
    path: str | None = None  # a .abc file or a folder of them to read instead of `corpus`
    block_size: int = 384  # tokens of a tune the model sees (header included); longer tunes are cut
    batch_size: int = 16  # tunes per optimizer step
    by_length: bool = False  # batches of tunes of similar length (less padding); the LSTM baseline draws alike

    def __post_init__(self) -> None:
        unknown = [c for c in self.corpus if c not in CORPORA]
        if unknown or not self.corpus:
            raise ValueError(f"data.corpus must name some of {', '.join(CORPORA)}, got {self.corpus!r}")
        if self.block_size < 16 or self.batch_size < 1:
            raise ValueError("data.block_size must be >= 16 and data.batch_size >= 1")


@dataclass
class FolkModelConfig(TransformerSize):
    n_layer: int = 3
    n_embd: int = 96
    dropout: float = 0.1
    positions: str = "learned"  # learned (a position table, GPT-2) | rotary (relative: RoPE on queries and keys)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.positions not in ("learned", "rotary"):
            raise ValueError(f"model.positions must be learned or rotary, got {self.positions!r}")


@dataclass
class FolkTrainConfig(StepTrainConfig, OptimizerChoice):
    max_iters: int = 1000
    lr: float = 2e-3
    min_lr: float = 2e-4
    warmup_iters: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_optimizer()


@dataclass
class FolkEvalConfig:
    num_samples: int = 64  # tunes `genlab eval` generates (the requested headers cycle over the test tunes')
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    max_tokens: int = 384  # new tokens a generated tune may take at most (32 bars of a reel take about 550)
    # metre: every bar full by construction (tasks/folk/grammar.py) | beats: and notes grouped in the metre's beats
    # | free: the model alone
    sampling: str = "metre"
    guidance: float = 0.0  # metre sampling: push the scores away from the metre's twin (6/8 <-> 3/4, 4/4 <-> 2/2)

    def __post_init__(self) -> None:
        if self.sampling not in ("metre", "beats", "free"):
            raise ValueError(f"eval.sampling must be metre, beats or free, got {self.sampling!r}")
        if not 0 <= self.guidance <= 10 or (self.guidance and self.sampling == "free"):
            raise ValueError("eval.guidance must be in [0, 10], and 0 with eval.sampling=free")
        if self.num_samples < 1 or self.temperature <= 0 or self.top_k < 0 or self.max_tokens < 1:
            raise ValueError("eval.num_samples, max_tokens >= 1, eval.temperature > 0, eval.top_k >= 0")


FolkRecipe = recipe_type("folk", data=FolkDataConfig, model=FolkModelConfig, train=FolkTrainConfig, eval=FolkEvalConfig)
