"""The GAN training: the essay's algorithm done right.

Per step: noise z ~ N(0, I) -> G; a D step on [real, G(z).detach()] with its own Adam; a G step with
the non-saturating loss through the freshly updated D, with its own Adam. Optional: an R1 penalty on
real data (every `train.r1_every` steps, its weight scaled up to match, as StyleGAN2's lazy R1), an EMA
of G's weights to sample from, and DiffAugment translations of D's inputs.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch

from genlab.core.distributed import DistEnv, unwrap, wrap_ddp
from genlab.core.ema import update_ema
from genlab.core.run import RunDir
from genlab.core.training import OwnNoise
from genlab.data import ImageData, load_image_dataset
from genlab.data.augment import translate
from genlab.evaluation.classifier import evaluator_or_none
from genlab.evaluation.image_eval import evaluate_samples
from genlab.io.files import atomic_write_bytes
from genlab.io.images import make_grid, png_bytes
from genlab.models.gan import GANConfig, build_gan, sample_images
from genlab.tasks.gan.process import discriminator_loss, frozen, gan_optimizers, generator_loss, r1_penalty
from genlab.tasks.gan.recipe import GanRecipe

GRID_SIDE = 10  # sample grid: 10 x 10; for conditional models column c shows label c
QUICK_EVAL_SAMPLES = 1000  # per-epoch FID/precision/recall: cheap, and enough to pick the best epoch


def resolve_model_config(recipe: GanRecipe, data: ImageData) -> GANConfig:
    """Fill in what the dataset decides (the number of classes of a conditional model)."""
    return dataclasses.replace(recipe.model, num_classes=data.num_classes if recipe.model.conditional else 0)


class GanTraining(OwnNoise):
    best_metric = "quality/fid"  # lower is better; the trainer keeps checkpoints/best by it

    @classmethod
    def build(cls, recipe: GanRecipe, env: DistEnv, run: RunDir) -> GanTraining:
        # A GAN keeps nothing in its run directory besides what the trainer writes.
        return cls(recipe, load_image_dataset(recipe.data.name, recipe.data.path), env)

    def __init__(self, recipe: GanRecipe, data: ImageData, env: DistEnv):
        self.recipe, self.env = recipe, env
        self.config = resolve_model_config(recipe, data)
        device = env.device
        torch.manual_seed(recipe.seed)  # identical initial weights on every rank
        generator, discriminator = build_gan(self.config)
        self.generator = wrap_ddp(generator.to(device), env)
        self.discriminator = wrap_ddp(discriminator.to(device), env)
        self.modules = {"generator": generator, "discriminator": discriminator}
        # Samples come from an exponential moving average of G when train.ema_decay > 0 (Yazici et al.
        # 2019): averaging over the last ~1/(1-decay) steps smooths out G's oscillation around D.
        self.sampler = generator
        if recipe.train.ema_decay:
            self.sampler = copy.deepcopy(generator).requires_grad_(False)
            self.modules["generator_ema"] = self.sampler
        t = recipe.train
        self.optimizers = gan_optimizers(generator, discriminator, t.lr_g, t.lr_d, tuple(t.betas))
        # The whole (small) training set lives on the device as floats in [0, 1]: (N, 1, 28, 28).
        images, labels = data.tensors("train", recipe.data.limit)
        self.images, self.labels = images.to(device), labels.to(device)
        self.num_examples = len(self.labels)
        # Noise comes from its own generator, identical on all ranks; each rank takes its slice.
        self.noise = torch.Generator().manual_seed(recipe.seed + 1)
        self.fixed_z = torch.randn(
            GRID_SIDE * GRID_SIDE, self.config.latent_dim, generator=torch.Generator().manual_seed(recipe.seed + 2)
        ).to(device)
        self.r1_weight = t.r1_gamma / 2 * t.r1_every
        self.data = data
        self.data_source = f"{data.name} from {data.source}"
        self.evaluator = evaluator_or_none(data.name) if env.is_main else None  # None: no quick scores

    def meta(self) -> dict[str, Any]:
        return {
            "task": "gan",
            "model": dataclasses.asdict(self.config),
            "dataset": self.recipe.data.name,
            "sampler": "generator_ema" if self.recipe.train.ema_decay else "generator",
        }

    def step_kind(self, step: int) -> str:
        return "d+g+r1" if self.r1_weight and step % self.recipe.train.r1_every == 0 else "d+g"

    def _local_slice(self, global_draw: torch.Tensor) -> torch.Tensor:
        """This rank's share of a draw made for the whole global batch (same on every rank)."""
        local = len(global_draw) // self.env.world_size
        return global_draw[self.env.rank * local : (self.env.rank + 1) * local].to(self.env.device)

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        """DiffAugment (Zhao et al. 2020): D sees real and fake images under the same random
        translations, applied differentiably so that G learns through them."""
        s = self.recipe.train.augment_shift
        if not s:
            return images
        shifts = torch.randint(0, 2 * s + 1, (len(images) * self.env.world_size, 2), generator=self.noise)
        return translate(images, self._local_slice(shifts), s)

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        # index_select: the same rows as self.images[indices], in about half the time of advanced indexing
        real = self.images.index_select(0, indices.to(self.images.device))  # (B, 1, 28, 28)
        labels = self.labels[indices.to(self.labels.device)] if self.config.num_classes else None
        world = self.env.world_size
        z = self._local_slice(torch.randn(len(indices) * world, self.config.latent_dim, generator=self.noise))
        fake = self.generator(z, labels)  # (B, 1, 28, 28)

        # D step: one forward over [real; fake] so DDP sees a single forward per backward.
        use_r1 = self.step_kind(step).endswith("r1")
        real = real.requires_grad_(use_r1)
        both_labels = torch.cat([labels, labels]) if labels is not None else None
        d_input = torch.cat([self._augment(real), self._augment(fake.detach())])  # (2B, 1, 28, 28)
        logits = self.discriminator(d_input, both_labels)  # (2B,)
        real_logits, fake_logits = logits.chunk(2)
        d_loss = discriminator_loss(real_logits, fake_logits)
        loss = d_loss
        metrics = {}
        if use_r1:
            penalty = r1_penalty(real_logits, real)
            loss = loss + self.r1_weight * penalty
            metrics["r1"] = penalty.item()
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["discriminator"].step()

        # G step through the updated D, frozen: the pass computes no weight gradients for D. The bare
        # module is used, so DDP expects no all-reduce for it.
        with frozen(unwrap(self.discriminator)) as discriminator:
            g_loss = generator_loss(discriminator(self._augment(fake), labels))
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        if self.sampler is not self.modules["generator"]:
            update_ema(self.sampler, self.modules["generator"], self.recipe.train.ema_decay, step)
        return {
            "loss/d": d_loss.item(),
            "loss/g": g_loss.item(),
            "d/real_prob": torch.sigmoid(real_logits).mean().item(),
            "d/fake_prob": torch.sigmoid(fake_logits).mean().item(),
            **metrics,
        }

    def sample_grid(self) -> torch.Tensor:
        images, _ = sample_images(self.sampler, len(self.fixed_z), seed=0, fixed_z=self.fixed_z)
        return images

    def end_period(self, period: int, run: RunDir) -> dict[str, float]:
        if not self.env.is_main:
            return {}
        grid = make_grid(self.sample_grid(), nrow=GRID_SIDE)
        atomic_write_bytes(run.samples_dir / f"epoch_{period:04d}.png", png_bytes(grid))
        run.log_image("samples", grid[:, :, None], period)
        if self.evaluator is None:
            return {}
        images, labels = sample_images(self.sampler, QUICK_EVAL_SAMPLES, seed=self.recipe.seed + 3)
        quality = evaluate_samples(images, self.data, self.evaluator, requested_labels=labels)
        keys = ("fid", "precision", "recall", "min_class_fraction", "label_accuracy")
        return {f"quality/{k}": quality[k] for k in keys if k in quality}
