"""The recipe schema of a GAN run (`task: gan`): data, model, optimisers and the training-side fixes."""

from __future__ import annotations

from dataclasses import dataclass, field

from genlab.core.recipe import DataConfig, EpochTrainConfig, SampleEvalConfig, check_betas, recipe_type
from genlab.models.gan import GANConfig


@dataclass
class AdversarialTrainConfig(EpochTrainConfig):
    """The optimiser keys of every GAN's train section (the image GANs' and the audio GAN's)."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    r1_gamma: float = 0.0  # weight of the R1 gradient penalty on real data (0 = off)
    r1_every: int = 4  # lazy R1: apply it every k steps with its weight scaled by k (StyleGAN2)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_betas(self.betas)
        if self.r1_every < 1:
            raise ValueError("train.r1_every must be >= 1")
        if min(self.lr_g, self.lr_d) <= 0 or self.r1_gamma < 0:
            raise ValueError("train learning rates must be > 0 and r1_gamma >= 0")


def check_ema_decay(decay: float) -> None:
    if not 0 <= decay < 1:
        raise ValueError("train.ema_decay must be in [0, 1)")


@dataclass
class GanTrainConfig(AdversarialTrainConfig):
    augment_shift: int = 0  # DiffAugment: translate D's inputs (real and fake) by up to this many pixels
    ema_decay: float = 0.0  # sample from an exponential moving average of G's weights (0 = off)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ema_decay(self.ema_decay)
        if self.augment_shift < 0:
            raise ValueError("train.augment_shift must be >= 0")


GanRecipe = recipe_type("gan", data=DataConfig, model=GANConfig, train=GanTrainConfig, eval=SampleEvalConfig)
