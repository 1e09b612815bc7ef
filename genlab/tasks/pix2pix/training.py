"""The glyph-translation training (pix2pix; zi2zi with several target fonts; few-shot from another run).

An example is a (target font, training character) pair: the source font's glyph in, the target font's glyph
out. Every step draws nothing at random (the loop's seeded order picks the pairs), so a run is reproducible
from its seed alone. With `train.init`, the networks start from that run's, grown by a style vector for each
new target font; `train.method: lora` then trains only low-rank updates of the generator's convolutions and
the style vectors (the discriminator, which is not shipped, trains fully).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from genlab.core.distributed import DistEnv, wrap_ddp
from genlab.core.ema import SamplerEMA
from genlab.core.run import RunDir
from genlab.core.training import NoRandomState, weights_meta
from genlab.data.augment import random_affine
from genlab.data.glyphs import GlyphSet, training_glyphs
from genlab.errors import GenlabError
from genlab.models.glyph_unet import GlyphUNet
from genlab.models.patchgan import PatchGAN, PatchGANConfig
from genlab.tasks.pix2pix.pipeline import load_library, sample_grid, save_lora_delta, start_from, translate, with_lora
from genlab.tasks.pix2pix.process import translation_step
from genlab.tasks.pix2pix.recipe import Pix2PixRecipe


def build_networks(recipe: Pix2PixRecipe) -> tuple[GlyphUNet, PatchGAN]:
    """Fresh networks for the recipe's targets, or the start run's grown by the targets it lacks."""
    data, train = recipe.data, recipe.train
    if train.init is None:
        config = dataclasses.replace(recipe.model, size=data.size, fonts=list(data.targets))
        discriminator = PatchGANConfig(recipe.discriminator.width, recipe.discriminator.depth, len(data.targets))
        return GlyphUNet(config), PatchGAN(discriminator)
    generator, discriminator = start_from(train.init, list(data.targets))
    if train.method == "lora":
        with_lora(generator, train.lora_rank, train.lora_alpha)
    return generator.train(), discriminator.train()


class Pix2PixTraining(NoRandomState):  # the steps draw nothing
    # No "best" checkpoint: the only held-out glyphs are the test characters, and picking a checkpoint by them
    # would tune on the test set. Their L1 ("test/l1") is logged each period to watch, never to choose.
    best_metric = None

    def __init__(self, recipe: Pix2PixRecipe, env: DistEnv, run: RunDir):
        data = recipe.data
        self.recipe, self.env = recipe, env
        self.glyphs: GlyphSet = load_library(data)
        torch.manual_seed(recipe.seed)  # identical initial weights on every rank
        generator, discriminator = build_networks(recipe)
        if generator.config.size != data.size:
            raise GenlabError(f"data.size {data.size} differs from the start run's glyph size {generator.config.size}")
        self.generator, self.discriminator = generator.to(env.device), discriminator.to(env.device)
        self.fonts = generator.config.fonts
        self.g, self.d = wrap_ddp(self.generator, env), wrap_ddp(self.discriminator, env)
        self.modules = {"generator": self.generator, "discriminator": self.discriminator}
        t = recipe.train
        self.ema = SamplerEMA(self.modules, "generator", t.ema_decay)
        self.sampler = self.ema.sampler  # what the run draws with: the EMA of the generator, or the generator
        trainable = [p for p in self.generator.parameters() if p.requires_grad]
        self.optimizers = {
            "generator": torch.optim.Adam(trainable, lr=t.lr_g, betas=tuple(t.betas)),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=t.lr_d, betas=tuple(t.betas)),
        }
        ink = torch.from_numpy(self.glyphs.ink).unsqueeze(2).to(env.device)  # (F_all, C, 1, S, S)
        self.source = ink[self.glyphs.index(data.source)]  # (C, 1, S, S): the held-out scores' glyphs
        self.targets = ink[[self.glyphs.index(f) for f in data.targets]]  # (T, C, 1, S, S)
        self.target_ids = torch.tensor([self.fonts.index(f) for f in data.targets], device=env.device)  # (T,)
        self.train_source, self.train_targets, self.pairs = self._training_pairs(env.device)
        self.num_examples = len(self.pairs)
        self.total_steps = t.epochs * (self.num_examples // data.batch_size)
        unit = "characters" if data.kind == "glyphs" else "items"
        per_font = torch.bincount(self.pairs[:, 0], minlength=len(data.targets)).tolist()
        self.data_source = (
            f"{'/'.join(map(str, per_font))} training {unit} x {len(data.targets)} target fonts "
            f"({', '.join(data.targets)}), source {data.source}; {len(self.glyphs.split('test'))} held-out {unit}"
        )

    def _training_pairs(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The source ink (N, 1, S, S), the targets' ink (T, N, 1, S, S) and the (P, 2) (target slot, character)
        pairs to train on: the library's training characters (data.train_chars: shared) or every character
        the source and that target have outside the held-out ones (all; gb2312 adds level 2, cjk the other
        unified ideographs); the first data.shots per target."""
        data = self.recipe.data
        if data.train_chars != "shared":
            source, targets, pairs = training_glyphs(
                data.source, list(data.targets), data.size, data.test_every, data.train_chars
            )
            source, targets = torch.from_numpy(source).unsqueeze(1), torch.from_numpy(targets).unsqueeze(2)
            pairs = torch.from_numpy(pairs)
        else:
            source, targets = self.source, self.targets
            train = torch.from_numpy(self.glyphs.split("train"))
            slots = torch.arange(len(data.targets)).repeat_interleave(len(train))
            pairs = torch.stack([slots, train.repeat(len(data.targets))], 1)
        if data.shots:
            pairs = torch.cat([pairs[pairs[:, 0] == slot][: data.shots] for slot in range(len(data.targets))])
        return source.to(device), targets.to(device), pairs.to(device)

    def meta(self) -> dict[str, Any]:
        t = self.recipe.train
        lora = {"rank": t.lora_rank, "alpha": t.lora_alpha} if t.method == "lora" else None
        return weights_meta(
            "pix2pix",
            self.generator.config,
            discriminator=dataclasses.asdict(self.discriminator.config),
            lora=lora,
            source=self.recipe.data.source,
            sampler=self.ema.name,
        )

    def step_kind(self, step: int) -> str:
        return "translate"

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        slots, chars = self.pairs[indices.to(self.pairs.device)].unbind(1)  # (B,) target slot, character
        source, truth = _ink(self.train_source[chars]), _ink(self.train_targets[slots, chars])  # (B, 1, S, S)
        torch.manual_seed(self.recipe.seed * 1_000_003 + step)  # dropout and the moves: seeded by the step
        t = self.recipe.train
        if t.augment_shift or t.augment_zoom:  # one move for the pair, so the truth stays the source's
            u = torch.rand(len(source), 3).to(source.device)
            source, truth = random_affine(torch.cat([source, truth], 1), u, t.augment_shift, t.augment_zoom).chunk(2, 1)
        self._set_learning_rates(step)
        metrics = translation_step(self.g, self.d, self.optimizers, (source, truth, self.target_ids[slots]), t)
        self.ema.update(step)
        return metrics

    def _set_learning_rates(self, step: int) -> None:
        """pix2pix's linear decay to 0 over the steps after train.decay_from of them."""
        t = self.recipe.train
        start = t.decay_from * self.total_steps
        factor = 1.0 if step < start else max(0.0, (self.total_steps - step) / max(1.0, self.total_steps - start))
        for name, lr in (("generator", t.lr_g), ("discriminator", t.lr_d)):
            for group in self.optimizers[name].param_groups:
                group["lr"] = lr * factor

    def end_period(self, period: int, run: RunDir) -> dict[str, float]:
        """A grid of held-out characters (source | generated | truth per target font) and their L1."""
        if not self.env.is_main:
            return {}
        t = self.recipe.train
        if t.method == "lora":  # what the run ships: the trained tensors on a reference to its start
            save_lora_delta(
                self.generator, run.path / "adapter", str(t.init), {"rank": t.lora_rank, "alpha": t.lora_alpha}
            )
        pictures, nrow = sample_grid(self.sampler, self.glyphs, self.recipe.data.source)
        run.save_sample_grid(pictures, nrow, period)
        test = torch.as_tensor(self.glyphs.split("test"), device=self.source.device)
        l1 = [
            (translate(self.sampler, self.source[test], font_id.repeat(len(test))) - self.targets[slot, test])
            .abs()
            .mean()
            .item()
            for slot, font_id in enumerate(self.target_ids)
        ]
        self.generator.train()
        return {"test/l1": sum(l1) / len(l1)}


def _ink(glyphs: torch.Tensor) -> torch.Tensor:
    """Ink as float in [0, 1] from the uint8 renderings (data.train_chars: all) or the library's floats."""
    return glyphs.float() / 255 if glyphs.dtype == torch.uint8 else glyphs
