"""The recipe schema of an audio run (`task: audio`): a class-conditional GAN on log-mel spectrograms of
spoken digits, and how its clips are turned into sound and scored."""

from __future__ import annotations

from dataclasses import dataclass

from genlab.core.recipe import DataConfig, recipe_type
from genlab.models.audio_gan import AudioGANConfig
from genlab.tasks.gan.recipe import AdversarialTrainConfig, check_ema_decay


@dataclass
class AudioDataConfig(DataConfig):
    name: str = "spoken-digits"
    batch_size: int = 64


@dataclass
class AudioTrainConfig(AdversarialTrainConfig):
    ema_decay: float = 0.0  # sample from an exponential moving average of G's weights (0 = off)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ema_decay(self.ema_decay)


@dataclass
class EvalConfig:
    num_samples: int = 1000  # clips `genlab eval` scores: 100 per digit
    batch_size: int = 250  # clips through Griffin-Lim at once (memory: ~100 MB per 250)
    griffin_lim_iters: int = 32  # phase-recovery iterations, for eval and generate alike
    quick_samples: int = 100  # clips scored after each sample period (label accuracy picks checkpoints/best)
    quick_griffin_lim_iters: int = 16  # fewer for the quick figure: accuracy barely moves past 16

    def __post_init__(self) -> None:
        if (
            min(
                self.num_samples,
                self.batch_size,
                self.griffin_lim_iters,
                self.quick_samples,
                self.quick_griffin_lim_iters,
            )
            < 1
        ):
            raise ValueError(
                "eval.num_samples, batch_size, griffin_lim_iters, quick_samples and "
                "quick_griffin_lim_iters must be >= 1"
            )


AudioRecipe = recipe_type("audio", data=AudioDataConfig, model=AudioGANConfig, train=AudioTrainConfig, eval=EvalConfig)
