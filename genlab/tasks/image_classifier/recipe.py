"""The recipe schema of an image_classifier run (`task: image_classifier`): data, the network, the
training objective (standard, FGSM with random start, or PGD adversarial training) and the evaluation
attack."""

from __future__ import annotations

from dataclasses import dataclass

from genlab.core.recipe import DataConfig, EpochTrainConfig, recipe_type
from genlab.evaluation.adversarial import ATTACKS
from genlab.models.convnet import ConvNetConfig

METHODS = ("standard", "fgsm-rs", "pgd")


@dataclass
class ClassifierDataConfig(DataConfig):
    name: str = "fashion-mnist"
    monitor_size: int = 512  # the last training images, held out of training: the per-epoch robustness check

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.monitor_size < 1:
            raise ValueError("data.monitor_size must be >= 1")


@dataclass
class ClassifierTrainConfig(EpochTrainConfig):
    method: str = "standard"  # standard | fgsm-rs (Wong et al. 2020) | pgd (Madry et al. 2018)
    epsilon: float = 0.1  # L-inf radius of the training perturbations (images in [0, 1])
    step_size: float | None = None  # None: 1.25 * epsilon for fgsm-rs, 2.5 * epsilon / pgd_steps for pgd
    pgd_steps: int = 7
    lr: float = 5e-3  # peak of a one-cycle schedule: linear up for the first half, down to 0 at the end
    weight_decay: float = 0.0
    epsilon_warmup: int = 0  # epochs over which the training epsilon grows linearly from ~0 (0 = from the start)
    overfit_drop: float = 0.2  # flag catastrophic overfitting when held-out PGD accuracy falls this far
    #                            below its best while training goes on

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in METHODS:
            raise ValueError(f"train.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not 0 <= self.epsilon <= 1 or (self.method != "standard" and self.epsilon == 0):
            raise ValueError("train.epsilon must be in [0, 1], and > 0 for adversarial training")
        if self.step_size is not None and self.step_size <= 0:
            raise ValueError("train.step_size must be > 0 (or null for the method's default)")
        if (
            self.pgd_steps < 1
            or self.lr <= 0
            or min(self.weight_decay, self.epsilon_warmup) < 0
            or not 0 < self.overfit_drop <= 1
        ):
            raise ValueError(
                "train.pgd_steps >= 1, lr > 0, weight_decay and epsilon_warmup >= 0, overfit_drop in (0, 1]"
            )


@dataclass
class RobustEvalConfig:
    attack: str = "pgd"
    epsilon: float = 0.1  # the threat model the run is judged under (also for a standard run)
    steps: int = 50
    restarts: int = 10
    limit: int = 1000  # the first `limit` test images (0 = all)
    batch_size: int = 500
    monitor_steps: int = 10  # the PGD of the per-epoch check on the held-out training images (1 start)

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise ValueError(f"eval.attack must be one of {', '.join(ATTACKS)}, got {self.attack!r}")
        if not 0 <= self.epsilon <= 1:
            raise ValueError("eval.epsilon must be in [0, 1]")
        if min(self.steps, self.restarts, self.batch_size, self.monitor_steps) < 1 or self.limit < 0:
            raise ValueError("eval.steps, restarts, batch_size and monitor_steps must be >= 1, limit >= 0")


ClassifierRecipe = recipe_type(
    "image_classifier",
    data=ClassifierDataConfig,
    model=ConvNetConfig,
    train=ClassifierTrainConfig,
    eval=RobustEvalConfig,
)
