"""The VQGAN training: an autoencoder step (reconstruction + commitment + feature matching + patch GAN),
then, from train.adversarial_start on, a discriminator step.

The quantiser's k-means initialisation and dead-code restarts draw from torch's global generator
(inside vector-quantize-pytorch); each step runs them under a generator seeded by (seed, step), so a run
is reproducible from its seed and a resumed run draws what the uninterrupted one did.
"""

from __future__ import annotations

from typing import Any

import torch

from genlab.core.distributed import DistEnv, wrap_ddp
from genlab.core.run import RunDir
from genlab.core.training import NoRandomState, SampledEachPeriod, weights_meta
from genlab.data import load_image_dataset
from genlab.errors import GenlabError
from genlab.evaluation.classifier import evaluator_or_none
from genlab.evaluation.image_eval import quick_quality
from genlab.models.vqgan import VQGAN, PatchDiscriminator
from genlab.tasks.vqgan.pipeline import reconstruct, side_by_side
from genlab.tasks.vqgan.process import (
    EvaluatorFeatures,
    code_usage,
    feature_matching,
    hinge_d_loss,
    hinge_g_loss,
    psnr,
)
from genlab.tasks.vqgan.recipe import VQGANRecipe

GRID_COLS = 10  # sample grid: 5 pairs of rows, held-out originals above their reconstructions
QUICK_EVAL_IMAGES = 500  # held-out images reconstructed for the per-period scores


def check_image_shape(images: torch.Tensor, config: Any, dataset: str) -> None:
    """The data's images (N, C, S, S) must be the model's: one line naming the keys to set otherwise."""
    want = (config.channels, config.image_size, config.image_size)
    if tuple(images.shape[1:]) != want:
        c, side = images.shape[1], images.shape[-1]
        raise GenlabError(
            f"{dataset} images are {c}x{side}x{side}, the model is built for {'x'.join(map(str, want))}: "
            f"set model.channels={c} model.image_size={side}"
        )


class VQGANTraining(NoRandomState, SampledEachPeriod):  # every draw is seeded by (seed, step)
    best_metric = "quality/fid"  # FID of held-out reconstructions, lower is better

    def __init__(self, recipe: VQGANRecipe, env: DistEnv, run: RunDir):
        data = load_image_dataset(recipe.data.name, recipe.data.path)
        evaluator = evaluator_or_none(data.name)
        if evaluator is None and recipe.train.feature_weight > 0:
            raise GenlabError(f"{data.name} has no evaluator net for feature matching: set train.feature_weight=0")
        self.recipe, self.env, self.data, self.config = recipe, env, data, recipe.model
        images, _ = data.tensors("train", recipe.data.limit)  # (N, C, S, S) in [0, 1]
        check_image_shape(images, self.config, data.name)
        device = env.device
        torch.manual_seed(recipe.seed)  # identical initial weights on every rank
        self.model = VQGAN(self.config).to(device)
        self.disc = PatchDiscriminator(channels=self.config.channels).to(device)
        self.net, self.disc_net = wrap_ddp(self.model, env), wrap_ddp(self.disc, env)
        self.features = EvaluatorFeatures(evaluator).to(device) if evaluator is not None else None
        self.modules: dict[str, torch.nn.Module] = {"model": self.model, "discriminator": self.disc}
        t = recipe.train
        self.optimizers = {
            "model": torch.optim.Adam(self.model.parameters(), lr=t.lr, betas=tuple(t.betas)),
            "discriminator": torch.optim.Adam(self.disc.parameters(), lr=t.lr_d, betas=tuple(t.betas)),
        }
        self.images = images.to(device)
        self.num_examples = len(self.images)
        self.held_out = data.tensors("test")[0][:QUICK_EVAL_IMAGES]
        self.data_source = f"{data.name} from {data.source}"
        self.evaluator = evaluator if env.is_main else None

    def meta(self) -> dict[str, Any]:
        return weights_meta("vqgan", self.config, dataset=self.recipe.data.name)

    def step_kind(self, step: int) -> str:
        return "autoencoder+gan" if step >= self.recipe.train.adversarial_start else "autoencoder"

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        x = self.images.index_select(0, indices.to(self.images.device))  # (B, C, S, S)
        t = self.recipe.train
        adversarial = step >= t.adversarial_start
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.recipe.seed * 1_000_003 + step)  # the quantiser's restarts and k-means
            logits, ids, commit = self.net(x)
        fake = torch.sigmoid(logits)
        l1 = (fake - x).abs().mean()
        loss = l1 + commit
        metrics = {"loss/l1": l1.item(), "loss/commit": commit.item()}
        if self.features is not None and t.feature_weight > 0:
            feat = feature_matching(self.features, fake, x)
            loss = loss + t.feature_weight * feat
            metrics["loss/features"] = feat.item()
        if adversarial:
            self.disc.requires_grad_(False)  # the autoencoder's step leaves D's gradients alone
            g = hinge_g_loss(self.disc_net(fake))
            self.disc.requires_grad_(True)
            loss = loss + t.adversarial_weight * g
            metrics["loss/g"] = g.item()
        self.optimizers["model"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["model"].step()
        if adversarial:
            d = hinge_d_loss(self.disc_net(x), self.disc_net(fake.detach()))
            self.optimizers["discriminator"].zero_grad(set_to_none=True)
            d.backward()
            self.optimizers["discriminator"].step()
            metrics["loss/d"] = d.item()
        usage = code_usage(ids, self.config.codebook_size)
        metrics.update({"codes/batch_use": usage["codebook_use"], "codes/batch_perplexity": usage["perplexity"]})
        return metrics

    def save_samples(self, period: int, run: RunDir) -> None:
        originals = self.held_out[: GRID_COLS * 5]
        recon, _ = reconstruct(self.model.eval(), originals)
        self.model.train()
        run.save_sample_grid(side_by_side(originals, recon, GRID_COLS), GRID_COLS, period)

    def quick_scores(self) -> dict[str, float]:
        recon, ids = reconstruct(self.model.eval(), self.held_out)
        self.model.train()
        scores = quick_quality(recon, self.data, self.evaluator, None)
        usage = code_usage(ids, self.config.codebook_size)
        scores.update(
            {
                "recon/psnr": float(psnr(recon, self.held_out).mean()),
                "codes/held_out_use": usage["codebook_use"],
                "codes/held_out_perplexity": usage["perplexity"],
            }
        )
        return scores
