"""The recipe schema of a token-transformer image run (`task: vq_dalle`): the VQGAN run that tokenizes
the images, data and captions, the transformer, training, sampling."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from genlab.core.recipe import DataConfig, EpochTrainConfig, SampleEvalConfig, check_betas, recipe_type


@dataclass
class VQDalleDataConfig(DataConfig):
    name: str = "fashion-mnist"
    tokenizer: str = "runs/vqgan-fashion"  # the VQGAN run (task: vqgan) whose codes the transformer writes
    caption_tokens: int = 12  # words a caption may have (the longest training caption has 10)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.caption_tokens <= 64:
            raise ValueError("data.caption_tokens must be in 1..64")


@dataclass
class VQDalleModelConfig:
    """The shared transformer's size (its vocabulary and context follow from the codebook and captions)."""

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0


@dataclass
class VQDalleTrainConfig(EpochTrainConfig):
    lr: float = 1e-3
    warmup_steps: int = 100  # linear warm-up, then a cosine decay to lr / 10 over train.epochs
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    weight_decay: float = 0.1
    grad_clip: float = 1.0  # clip the gradient norm (0 = off)
    cond_dropout: float = 0.1  # share of rows trained with the null caption (classifier-free guidance)
    word_dropout: float = 0.1  # share of caption words read as <unk>: the model learns to read around a new word

    def __post_init__(self) -> None:
        super().__post_init__()
        check_betas(self.betas)
        if self.lr <= 0 or self.warmup_steps < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("train.lr must be > 0, train.warmup_steps, weight_decay and grad_clip >= 0")
        if not 0 <= self.cond_dropout < 1 or not 0 <= self.word_dropout < 1:
            raise ValueError("train.cond_dropout and train.word_dropout must be in [0, 1)")


@dataclass
class VQDalleSampleConfig:
    """How `generate`, the sample grids and `evaluate` draw tokens unless told otherwise."""

    guidance: float = 3.0  # classifier-free guidance weight on the logits: 0 unconditional, 1 conditional
    temperature: float = 1.0  # 0: greedy
    top_k: int = 0  # keep the k likeliest codes (0: all)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.guidance) and self.guidance >= 0):
            raise ValueError("sample.guidance must be a finite number >= 0")
        if not (math.isfinite(self.temperature) and self.temperature >= 0) or self.top_k < 0:
            raise ValueError("sample.temperature must be a finite number >= 0 and sample.top_k >= 0")


@dataclass
class VQDalleEvalConfig(SampleEvalConfig):
    caption_samples: int = 2000  # images per caption set (training and held-out captions) for caption accuracy

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.caption_samples < 1:
            raise ValueError("eval.caption_samples must be >= 1")


VQDalleRecipe = recipe_type(
    "vq_dalle",
    data=VQDalleDataConfig,
    model=VQDalleModelConfig,
    train=VQDalleTrainConfig,
    sample=VQDalleSampleConfig,
    eval=VQDalleEvalConfig,
)
