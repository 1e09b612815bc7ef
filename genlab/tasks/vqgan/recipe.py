"""The recipe schema of a VQGAN run (`task: vqgan`): data, the autoencoder and its quantiser, training."""

from __future__ import annotations

from dataclasses import dataclass, field

from genlab.core.recipe import DataConfig, EpochTrainConfig, SampleEvalConfig, check_betas, recipe_type
from genlab.models.vqgan import VQGANConfig


@dataclass
class VQGANDataConfig(DataConfig):
    name: str = "fashion-mnist"


@dataclass
class VQGANTrainConfig(EpochTrainConfig):
    lr: float = 1e-3  # the autoencoder's Adam (the codebook itself moves by EMA, not by gradient)
    lr_d: float = 1e-3  # the patch discriminator's Adam
    betas: list[float] = field(default_factory=lambda: [0.5, 0.9])  # taming-transformers' VQGAN betas
    feature_weight: float = 1.0  # feature matching in the evaluator's conv features (a perceptual loss)
    adversarial_weight: float = 0.1  # the patch GAN's hinge loss on the decoder
    adversarial_start: int = 1000  # optimisation step at which the discriminator starts (first: a plain autoencoder)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_betas(self.betas)
        if self.lr <= 0 or self.lr_d <= 0:
            raise ValueError("train.lr and train.lr_d must be > 0")
        if self.feature_weight < 0 or self.adversarial_weight < 0 or self.adversarial_start < 0:
            raise ValueError("train.feature_weight, adversarial_weight and adversarial_start must be >= 0")


VQGANRecipe = recipe_type(
    "vqgan", data=VQGANDataConfig, model=VQGANConfig, train=VQGANTrainConfig, eval=SampleEvalConfig
)
