"""The recipe schema of a flow-matching image run (`task: flow`): data, U-Net, training, sampling."""

from __future__ import annotations

from dataclasses import dataclass, field

from genlab.core.recipe import DataConfig, EpochTrainConfig, SampleEvalConfig, check_betas, recipe_type
from genlab.models.unet import UNetConfig


@dataclass
class FlowDataConfig(DataConfig):
    name: str = "fashion-mnist"


@dataclass
class FlowTrainConfig(EpochTrainConfig):
    lr: float = 1e-3
    warmup_steps: int = 200  # linear warm-up, then a constant rate (a wall-clock budget has no known end)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    grad_clip: float = 1.0  # clip the gradient norm (0 = off)
    ema_decay: float = 0.999  # sample from an exponential moving average of the weights (0 = off)
    cond_dropout: float = 0.1  # share of rows trained without their condition (classifier-free guidance)
    logit_normal: bool = True  # training times from a logit-normal (SD3) rather than uniform

    def __post_init__(self) -> None:
        super().__post_init__()
        check_betas(self.betas)
        if self.lr <= 0 or self.warmup_steps < 0 or self.grad_clip < 0:
            raise ValueError("train.lr must be > 0, train.warmup_steps and train.grad_clip >= 0")
        if not 0 <= self.ema_decay < 1 or not 0 <= self.cond_dropout < 1:
            raise ValueError("train.ema_decay and train.cond_dropout must be in [0, 1)")


@dataclass
class SampleConfig:
    """How `generate`, the sample grids and `evaluate` draw images unless told otherwise."""

    steps: int = 10  # Euler steps from noise to image
    guidance: float = 1.5  # classifier-free guidance weight w: 0 unconditional, 1 conditional

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 1000 or self.guidance < 0:
            raise ValueError("sample.steps must be in 1..1000 and sample.guidance >= 0")


@dataclass
class FlowEvalConfig(SampleEvalConfig):
    # A text-conditioned model's caption accuracy is scored on at most this many images per caption set
    # (training and held-out captions): ±0.7 % standard error at 89 %, where eval.num_samples would triple
    # the evaluation's 20-step draws.
    caption_samples: int = 2000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.caption_samples < 1:
            raise ValueError("eval.caption_samples must be >= 1")


FlowRecipe = recipe_type(
    "flow", data=FlowDataConfig, model=UNetConfig, train=FlowTrainConfig, sample=SampleConfig, eval=FlowEvalConfig
)
