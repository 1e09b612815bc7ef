"""The video training: masked-frame flow matching on Moving-MNIST clips made fresh for every step.

Per step: batch_size new clips (ids step * examples_per_period + index: never the same clip twice,
the same clips for the same seed), shrunk to the model's side, each with one use's frame mask in turn
(predict / between / generate) and its two digits; loss = the velocity error on the frames to make
(process.masked_flow_loss); AdamW with a linear warm-up; an EMA of the weights samples.

A latent run (model.latent > 0) spends its first train.codec_steps on the per-frame autoencoder alone
(reconstruction of train.codec_frames frames per step); at the first flow step the latents' scale is
fixed and the EMA copy takes the autoencoder as it is, and from then on only the flow network learns
(its warm-up and EMA warm-up count from there), on the latents of each step's fresh clips.
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
from genlab.data import load_image_dataset
from genlab.data.moving_mnist import FRAMES, MovingMNIST
from genlab.errors import GenlabError
from genlab.models.video_unet import VideoUNetConfig
from genlab.tasks.video.pipeline import draw, to_model, video_network
from genlab.tasks.video.process import masked_flow_loss, mode_mask, training_masks
from genlab.tasks.video.recipe import VideoRecipe

SAMPLE_CLIPS = 4  # clips per use in each period's filmstrip


def check_model(config: VideoUNetConfig, context: int, codec_steps: int) -> VideoUNetConfig:
    """The network config a run trains: Moving MNIST's 20 frames, a prediction context that leaves frames,
    and autoencoder steps exactly when the flow works on latents."""
    if config.frames != FRAMES:
        raise GenlabError(f"model.frames must be {FRAMES}, Moving MNIST's clip length")
    if 64 % config.size:
        raise GenlabError(f"model.size must divide 64 (the clips' side), got {config.size}")
    if context >= config.frames:
        raise GenlabError(f"data.context must be below model.frames ({config.frames}), got {context}")
    if bool(config.latent) != bool(codec_steps):
        raise GenlabError("train.codec_steps > 0 trains model.latent's autoencoder: give both or neither")
    return dataclasses.replace(config, num_digits=10)


class VideoTraining(OwnNoise, SampledEachPeriod):
    best_metric = None  # no quick scores: the evaluation (genlab eval) is the measure
    evaluator = None

    def __init__(self, recipe: VideoRecipe, env: DistEnv, run: RunDir):
        data = load_image_dataset(recipe.data.name, recipe.data.path)
        self.config = check_model(recipe.model, recipe.data.context, recipe.train.codec_steps)
        self.recipe, self.env = recipe, env
        self.clips = MovingMNIST(data, "train", recipe.data.seed, self.config.frames)
        torch.manual_seed(recipe.seed)
        model = video_network(self.config).to(env.device)
        self.net, self.model = wrap_ddp(model, env), model
        self.modules: dict[str, torch.nn.Module] = {"model": model}
        self.ema = SamplerEMA(self.modules, "model", recipe.train.ema_decay)
        self.sampler = self.ema.sampler
        t = recipe.train
        self.optimizers = {"model": adamw(model, t.lr, t.betas, weight_decay=0.0)}
        self.num_examples = t.period_steps * recipe.data.batch_size
        self.noise = torch.Generator().manual_seed(recipe.seed + 1)
        self.data_source = f"Moving MNIST clips of {data.name} train digits from {data.source}"

    def meta(self) -> dict[str, Any]:
        return weights_meta("video", self.config, dataset=self.recipe.data.name, sampler=self.ema.name)

    def step_kind(self, step: int) -> str:
        return "video"

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        """An autoencoder step for the first train.codec_steps (latent runs), then flow steps on its latents."""
        batch = self.clips.batch((indices + step * self.num_examples).tolist())  # fresh clips every step
        clips = to_model(batch.frames, self.config.size).to(self.env.device)  # (B, T, S, S)
        t = self.recipe.train
        flow_step = step - t.codec_steps  # the flow's own step count: its warm-up and EMA start at its first
        warm = step if flow_step < 0 else flow_step
        set_lr(self.optimizers["model"], t.lr * min(1.0, (warm + 1) / (t.warmup_steps + 1)))
        if flow_step < 0:
            return self._codec_step(clips)
        if flow_step == 0 and self.model.codec is not None:  # the autoencoder is done: fix its scale, copy it
            self.model.codec.calibrate(clips)
            self.ema.sampler.load_state_dict(self.model.state_dict())
        loss = self._flow_loss(clips, torch.from_numpy(batch.digits).to(clips.device))
        grad_norm = descend(self.optimizers["model"], self.model, loss, t.grad_clip)
        self.ema.update(flow_step)
        return {"loss/flow": loss.item(), "grad_norm": grad_norm}

    def _flow_loss(self, clips: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
        """Masked flow matching on clips (B, T, S, S) (on their latents for a latent run; the autoencoder fixed)."""
        t = self.recipe.train
        mask = training_masks(clips.size(0), self.config.frames, self.recipe.data.context, self.noise, tuple(t.uses))
        mask = mask.to(clips.device)
        with torch.no_grad():
            x1 = self.model.encode(clips)
        return masked_flow_loss(
            self.net, x1, self.model.plane_mask(mask), digits, self.noise, t.cond_dropout, t.logit_normal
        )

    def _codec_step(self, clips: torch.Tensor) -> dict[str, float]:
        """One autoencoder step on train.codec_frames frames drawn from clips (B, T, S, S)."""
        t, s = self.recipe.train, clips.size(-1)
        frames = clips.reshape(-1, 1, s, s)
        pick = torch.randperm(frames.size(0), generator=self.noise)[: t.codec_frames].to(clips.device)
        loss = self.model.codec.reconstruction_loss(frames[pick], self.noise, t.codec_noise)
        grad_norm = descend(self.optimizers["model"], self.model, loss, t.grad_clip)
        return {"loss/codec": loss.item(), "grad_norm": grad_norm}

    def save_samples(self, period: int, run: RunDir) -> None:
        """A filmstrip: for each use, SAMPLE_CLIPS rows of fixed training clips remade by the model."""
        batch = self.clips.batch(range(10**9, 10**9 + SAMPLE_CLIPS))  # ids no training step reaches soon
        real = to_model(batch.frames, self.config.size)
        n, frames, context = SAMPLE_CLIPS, self.config.frames, self.recipe.data.context
        masks = torch.cat([mode_mask(m, frames, context).expand(n, -1) for m in ("predict", "between", "generate")])
        digits = torch.from_numpy(batch.digits).repeat(3, 1)
        given = real.repeat(3, 1, 1, 1)
        s = self.recipe.sample
        clips = draw(self.sampler, self.recipe.seed + 2, given, masks, digits, s.steps, s.guidance)
        run.save_sample_grid(clips.reshape(-1, 1, *clips.shape[-2:]), frames, period)
