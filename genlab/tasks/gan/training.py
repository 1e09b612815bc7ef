"""The GAN training: the essay's algorithm done right.

Per step: noise z ~ N(0, I) -> G; a D step on [real, G(z).detach()] with its own Adam; a G step with
the non-saturating loss through the freshly updated D, with its own Adam. Optional: an R1 penalty on
real data (every `train.r1_every` steps, its weight scaled up to match, as StyleGAN2's lazy R1), an EMA
of G's weights to sample from, and DiffAugment translations of D's inputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from genlab.core.distributed import DistEnv
from genlab.core.run import RunDir
from genlab.core.training import OwnNoise, SampledEachPeriod, weights_meta
from genlab.data import ImageData, load_image_dataset
from genlab.data.augment import translate
from genlab.evaluation.classifier import evaluator_or_none
from genlab.evaluation.image_eval import quick_quality
from genlab.models.gan import GANConfig, build_gan, sample_images
from genlab.tasks.gan.process import AdversarialPair
from genlab.tasks.gan.recipe import GanRecipe

GRID_SIDE = 10  # sample grid: 10 x 10; for conditional models column c shows label c
QUICK_EVAL_SAMPLES = 1000  # per-epoch FID/precision/recall: cheap, and enough to pick the best epoch


def resolve_model_config(recipe: GanRecipe, data: ImageData) -> GANConfig:
    """Fill in what the dataset decides (the number of classes of a conditional model)."""
    return dataclasses.replace(recipe.model, num_classes=data.num_classes if recipe.model.conditional else 0)


class GanTraining(OwnNoise, SampledEachPeriod):
    best_metric = "quality/fid"  # lower is better; the trainer keeps checkpoints/best by it

    def __init__(self, recipe: GanRecipe, env: DistEnv, run: RunDir):
        # A GAN keeps nothing in its run directory besides what the trainer writes.
        data = load_image_dataset(recipe.data.name, recipe.data.path)
        self.recipe, self.env = recipe, env
        self.config = resolve_model_config(recipe, data)
        torch.manual_seed(recipe.seed)  # identical initial weights on every rank
        self.pair = AdversarialPair(*build_gan(self.config), recipe.train, env)
        self.modules, self.optimizers = self.pair.modules, self.pair.optimizers
        self.sampler = self.pair.ema.sampler  # G's EMA when train.ema_decay > 0, else G itself
        device = env.device
        # The whole (small) training set lives on the device as floats in [0, 1]: (N, 1, 28, 28).
        images, labels = data.tensors("train", recipe.data.limit)
        self.images, self.labels = images.to(device), labels.to(device)
        self.num_examples = len(self.labels)
        # Noise comes from its own generator, identical on all ranks; each rank takes its slice.
        self.noise = torch.Generator().manual_seed(recipe.seed + 1)
        self.fixed_z = torch.randn(
            GRID_SIDE * GRID_SIDE, self.config.latent_dim, generator=torch.Generator().manual_seed(recipe.seed + 2)
        ).to(device)
        self.data = data
        self.data_source = f"{data.name} from {data.source}"
        self.evaluator = evaluator_or_none(data.name) if env.is_main else None  # None: no quick scores

    def meta(self) -> dict[str, Any]:
        return weights_meta("gan", self.config, dataset=self.recipe.data.name, sampler=self.pair.ema.name)

    def step_kind(self, step: int) -> str:
        return self.pair.step_kind(step)

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        """DiffAugment (Zhao et al. 2020): D sees real and fake images under the same random
        translations, applied differentiably so that G learns through them."""
        s = self.recipe.train.augment_shift
        if not s:
            return images
        shifts = torch.randint(0, 2 * s + 1, (len(images) * self.env.world_size, 2), generator=self.noise)
        return translate(images, self.pair.rank_share(shifts), s)

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        # index_select: the same rows as self.images[indices], in about half the time of advanced indexing
        real = self.images.index_select(0, indices.to(self.images.device))  # (B, 1, 28, 28)
        labels = self.labels[indices.to(self.labels.device)] if self.config.num_classes else None
        z = torch.randn(len(indices) * self.env.world_size, self.config.latent_dim, generator=self.noise)
        return self.pair.step(real, self.pair.rank_share(z), labels, step, self._augment)

    def save_samples(self, period: int, run: RunDir) -> None:
        images, _ = sample_images(self.sampler, len(self.fixed_z), seed=0, fixed_z=self.fixed_z)
        run.save_sample_grid(images, GRID_SIDE, period)

    def quick_scores(self) -> dict[str, float]:
        images, labels = sample_images(self.sampler, QUICK_EVAL_SAMPLES, seed=self.recipe.seed + 3)
        return quick_quality(images, self.data, self.evaluator, labels)
