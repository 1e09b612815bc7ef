"""The recipe schema of a Moving-MNIST video run (`task: video`): clips, network, training, sampling."""

from __future__ import annotations

from dataclasses import dataclass, field

from genlab.core.recipe import TrainConfig, check_betas, recipe_type
from genlab.models.video_unet import VideoUNetConfig
from genlab.tasks.video.process import MODES


@dataclass
class VideoDataConfig:
    name: str = "mnist"  # the digits' data set (its train split for training clips, test split for test clips)
    path: str | None = None  # a folder of the four MNIST IDX files instead of `name`
    batch_size: int = 32  # clips per step (global batch)
    seed: int = 0  # the clip generator's seed (training clips; test clips are the test split's)
    context: int = 10  # frames given for prediction

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.context < 1:
            raise ValueError("data.batch_size and data.context must be >= 1")


@dataclass
class VideoTrainConfig(TrainConfig):
    """Clips are made fresh for every step, so a period is `period_steps` steps, not an epoch."""

    steps: int = 2000
    period_steps: int = 250
    lr: float = 1e-3
    warmup_steps: int = 100
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    grad_clip: float = 1.0
    ema_decay: float = 0.995  # a short average: a CPU run takes only a couple of thousand steps
    cond_dropout: float = 0.2  # rows trained without their digits (classifier-free guidance, and predict/between)
    logit_normal: bool = True
    # The uses the rows of a batch train, in equal shares (one network serves the uses it trained)
    uses: list[str] = field(default_factory=lambda: ["predict", "between", "generate"])
    codec_steps: int = 0  # with model.latent: the first steps train the frame autoencoder alone, then the flow
    codec_frames: int = 128  # frames per autoencoder step, drawn from the step's clips
    codec_noise: float = 0.1  # latent noise (times the latents' spread) the decoder learns to ignore

    def __post_init__(self) -> None:
        super().__post_init__()
        check_betas(self.betas)
        if not 0 <= self.codec_steps < self.steps or self.codec_frames < 1 or self.codec_noise < 0:
            raise ValueError("train.codec_steps must be in [0, steps), codec_frames >= 1 and codec_noise >= 0")
        if self.period_steps < 1 or self.steps < self.period_steps or self.steps % self.period_steps:
            raise ValueError("train.steps must be a positive multiple of train.period_steps")
        if self.lr <= 0 or self.warmup_steps < 0 or self.grad_clip < 0:
            raise ValueError("train.lr must be > 0, train.warmup_steps and train.grad_clip >= 0")
        if not 0 <= self.ema_decay < 1 or not 0 <= self.cond_dropout < 1:
            raise ValueError("train.ema_decay and train.cond_dropout must be in [0, 1)")
        if not self.uses or len(set(self.uses)) < len(self.uses) or not set(self.uses) <= set(MODES):
            raise ValueError(f"train.uses must name distinct uses among {', '.join(MODES)}")

    @property
    def periods(self) -> int:
        return self.steps // self.period_steps


@dataclass
class VideoSampleConfig:
    steps: int = 10  # Euler steps from noise to clip
    guidance: float = 2.0  # classifier-free guidance weight on the digits (generation)

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 1000 or self.guidance < 0:
            raise ValueError("sample.steps must be in 1..1000 and sample.guidance >= 0")


@dataclass
class VideoEvalConfig:
    num_clips: int = 200  # held-out clips per use (prediction, in-betweening, generation)
    batch_size: int = 100

    def __post_init__(self) -> None:
        if self.num_clips < 2 or self.batch_size < 1:
            raise ValueError("eval.num_clips must be >= 2 and eval.batch_size >= 1")


VideoRecipe = recipe_type(
    "video",
    data=VideoDataConfig,
    model=VideoUNetConfig,
    train=VideoTrainConfig,
    sample=VideoSampleConfig,
    eval=VideoEvalConfig,
)
