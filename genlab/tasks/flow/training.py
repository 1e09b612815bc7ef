"""The flow-matching training: regress the straight path's velocity, keep an EMA of the weights.

Per step: a batch of images x1 in [-1, 1], noise x0, times t and condition drops drawn from the run's
own generator; loss = |v(x_t, t, c) - (x1 - x0)|^2 (process.flow_matching_loss); AdamW with a linear
warm-up and a constant rate after it; the EMA copy is what samples, grids and evaluation use.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from genlab.core.distributed import DistEnv, wrap_ddp
from genlab.core.ema import SamplerEMA
from genlab.core.optim import adamw, descend, set_lr
from genlab.core.run import RunDir
from genlab.core.training import OwnNoise, SampledEachPeriod, weights_meta
from genlab.data import ImageData, load_image_dataset
from genlab.errors import GenlabError
from genlab.evaluation.classifier import evaluator_or_none
from genlab.evaluation.image_eval import quick_quality
from genlab.models.unet import UNet, UNetConfig
from genlab.tasks.flow.pipeline import class_labels, draw, to_model
from genlab.tasks.flow.process import flow_matching_loss
from genlab.tasks.flow.recipe import FlowRecipe
from genlab.tasks.flow.text import TEXT_DIM, CaptionBank, caption_encoder

GRID_SIDE = 10  # sample grid: 10 x 10; for class- or text-conditional models column c shows class c
QUICK_EVAL_SAMPLES = 500  # per-period FID/precision/recall: cheap, and enough to pick the best period


def resolve_model_config(recipe: FlowRecipe, data: ImageData) -> UNetConfig:
    """Fill in what the dataset decides (the number of classes of a class-conditional model)."""
    classes = data.num_classes if recipe.model.conditioning == "class" else 0
    if recipe.model.conditioning == "text" and recipe.model.text_dim != TEXT_DIM:
        raise GenlabError(f"model.text_dim must be {TEXT_DIM}, the size of the MiniLM sentence embedding")
    return dataclasses.replace(recipe.model, num_classes=classes)


class FlowTraining(OwnNoise, SampledEachPeriod):
    best_metric = "quality/fid"  # lower is better; the trainer keeps checkpoints/best by it

    def __init__(self, recipe: FlowRecipe, env: DistEnv, run: RunDir):
        data = load_image_dataset(recipe.data.name, recipe.data.path)
        self.recipe, self.env, self.data = recipe, env, data
        self.config = resolve_model_config(recipe, data)
        # Text conditioning: every training image gets a random caption of its class, embedded once here.
        self.captions = (
            CaptionBank.of(data.name, held_out=False, encoder=caption_encoder())
            if self.config.conditioning == "text"
            else None
        )
        device = env.device
        torch.manual_seed(recipe.seed)  # identical initial weights on every rank
        model = UNet(self.config).to(device)
        self.net = wrap_ddp(model, env)
        self.model = model
        self.modules: dict[str, torch.nn.Module] = {"model": model}
        self.ema = SamplerEMA(self.modules, "model", recipe.train.ema_decay)
        self.sampler = self.ema.sampler  # the weights' EMA when train.ema_decay > 0, else the model itself
        t = recipe.train
        self.optimizers = {"model": adamw(model, t.lr, t.betas, weight_decay=0.0)}
        # The whole (small) training set lives on the device, in model scale: (N, 1, 28, 28) in [-1, 1].
        images, labels = data.tensors("train", recipe.data.limit)
        self.images, self.labels = to_model(images.to(device)), labels.to(device)
        self.num_examples = len(self.labels)
        self.noise = torch.Generator().manual_seed(recipe.seed + 1)
        self.data_source = f"{data.name} from {data.source}"
        self.evaluator = evaluator_or_none(data.name) if env.is_main else None  # None: no quick scores

    def meta(self) -> dict[str, Any]:
        return weights_meta("flow", self.config, dataset=self.recipe.data.name, sampler=self.ema.name)

    def step_kind(self, step: int) -> str:
        return "flow"

    def conditions(self, indices: torch.Tensor) -> torch.Tensor | None:
        """The condition of each training example: (B,) labels, (B, 384) caption embeddings, or None."""
        if self.captions is not None:
            return self.captions.draw(self.labels[indices], self.noise).to(self.images.device)
        return self.labels[indices] if self.config.conditioning == "class" else None

    def sample_conditions(self, n: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Conditions for n samples, all classes in turn: (the condition, the class each should show)."""
        if self.captions is not None:
            labels, embeddings = self.captions.cycle(n)
            return embeddings, labels
        labels = class_labels(self.sampler, n, None)
        return labels, labels

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        indices = indices.to(self.images.device)
        x1 = self.images.index_select(0, indices)  # (B, 1, 28, 28)
        t = self.recipe.train
        set_lr(self.optimizers["model"], t.lr * min(1.0, (step + 1) / (t.warmup_steps + 1)))
        # Noise, times and drops come from the run's generator: the same draws on every rank (each for
        # its own images), so a run is reproducible from its seed and its saved generator state.
        loss = flow_matching_loss(self.net, x1, self.conditions(indices), self.noise, t.cond_dropout, t.logit_normal)
        grad_norm = descend(self.optimizers["model"], self.model, loss, t.grad_clip)
        self.ema.update(step)
        return {"loss/flow": loss.item(), "grad_norm": grad_norm}

    def save_samples(self, period: int, run: RunDir) -> None:
        s = self.recipe.sample
        cond, _ = self.sample_conditions(GRID_SIDE * GRID_SIDE)
        images = draw(self.sampler, GRID_SIDE * GRID_SIDE, self.recipe.seed + 2, cond, s.steps, s.guidance)
        run.save_sample_grid(images, GRID_SIDE, period)

    def quick_scores(self) -> dict[str, float]:
        s = self.recipe.sample
        cond, labels = self.sample_conditions(QUICK_EVAL_SAMPLES)
        images = draw(self.sampler, QUICK_EVAL_SAMPLES, self.recipe.seed + 3, cond, s.steps, s.guidance)
        return quick_quality(images, self.data, self.evaluator, labels)
