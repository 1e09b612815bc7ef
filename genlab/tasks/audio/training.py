"""The audio GAN's training: a class-conditional GAN on log-mel spectrograms of spoken digits.

The training clips are turned once into normalised log-mel images (N, 1, 64, 64) held in memory; each step
is genlab's GAN step on them (a D step on [real; G(z, y)], then a non-saturating G step through the updated
D), with optional lazy R1 on real spectrograms and an EMA generator to sample from. After each sample
period: a spectrogram grid (10 rows, one per digit), the ten digits spoken in turn as a WAV, and the
evaluator's label accuracy on `eval.quick_samples` clips through Griffin-Lim, whose error picks
checkpoints/best.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from genlab.core.distributed import DistEnv
from genlab.core.run import RunDir
from genlab.core.training import OwnNoise, SampledEachPeriod, weights_meta
from genlab.data.audio import AudioData, load_audio_dataset
from genlab.errors import GenlabError
from genlab.evaluation.audio_eval import evaluate_clips, load_audio_evaluator
from genlab.io.audio import write_wav
from genlab.models.audio_gan import build_audio_gan
from genlab.tasks.audio.process import cycle_labels, draw_spectrograms, to_waves
from genlab.tasks.audio.recipe import AudioRecipe
from genlab.tasks.audio.spectrogram import join_words, log_mel_image, trim_word
from genlab.tasks.gan.process import AdversarialPair

GRID_COLUMNS = 8  # the sample grid: one row per digit, this many clips each
QUICK_REFERENCE = 500  # training clips (every k-th: many voices) the quick Fréchet distance compares with


class AudioTraining(OwnNoise, SampledEachPeriod):
    best_metric = "quality/label_error"  # 1 - evaluator accuracy on the quick clips; lower is better

    def __init__(self, recipe: AudioRecipe, env: DistEnv, run: RunDir):
        data = load_audio_dataset(recipe.data.name, "train", recipe.data.path)
        self.recipe, self.env = recipe, env
        self.class_names = list(data.class_names)
        self.config = dataclasses.replace(recipe.model, num_classes=len(self.class_names))
        waves = torch.as_tensor(data.waves)
        labels = torch.as_tensor(data.labels)
        if recipe.data.limit:
            waves, labels = waves[: recipe.data.limit], labels[: recipe.data.limit]
        if len(labels) == 0:
            raise GenlabError(f"{data.name}: no training clips")
        torch.manual_seed(recipe.seed)  # identical initial weights on every rank
        self.pair = AdversarialPair(*build_audio_gan(self.config), recipe.train, env)
        self.modules, self.optimizers = self.pair.modules, self.pair.optimizers
        self.sampler = self.pair.ema.sampler  # G's EMA when train.ema_decay > 0, else G itself
        device = env.device
        # The whole training set as log-mel images, once: (N, 1, 64, 64) in [-1, 1] (~16 KB a clip).
        self.specs = torch.cat([log_mel_image(waves[i : i + 500]) for i in range(0, len(waves), 500)])
        self.specs = self.specs.unsqueeze(1).to(device)
        self.labels = labels.long().to(device)
        self.num_examples = len(self.labels)
        self.noise = torch.Generator().manual_seed(recipe.seed + 1)  # the steps' draws, same on all ranks
        self.data_source = f"{data.name} from {data.source}"
        # The quick score's reference: training clips, never the test split (and, for a folder of the
        # user's, never the default corpus that evaluate_clips would otherwise load).
        every = max(1, len(labels) // QUICK_REFERENCE)
        self.reference = AudioData(
            data.name,
            f"{data.source}, every {every}. training clip",
            waves[::every].contiguous().numpy(),
            labels[::every].numpy(),
            data.speakers[: len(labels)][::every],
        )
        try:
            self.evaluator = load_audio_evaluator() if env.is_main else None
        except GenlabError:
            self.evaluator = None  # no evaluator: train without the quick score (and without a best checkpoint)

    def meta(self) -> dict[str, Any]:
        dataset, sampler = self.recipe.data.name, self.pair.ema.name
        return weights_meta("audio", self.config, class_names=self.class_names, dataset=dataset, sampler=sampler)

    def step_kind(self, step: int) -> str:
        return self.pair.step_kind(step)

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        real = self.specs[indices.to(self.specs.device)]  # (B, 1, 64, 64)
        labels = self.labels[indices.to(self.labels.device)]  # (B,)
        z = torch.randn(len(indices) * self.env.world_size, self.config.latent_dim, generator=self.noise)
        return self.pair.step(real, self.pair.rank_share(z), labels, step)

    def save_samples(self, period: int, run: RunDir) -> None:
        k = self.config.num_classes
        seed = self.recipe.seed + 2  # the same noise every period: the grids show one G changing
        grid_labels = torch.arange(k).repeat_interleave(GRID_COLUMNS)  # row r: label r
        specs = draw_spectrograms(self.sampler, grid_labels, seed)  # (k * GRID_COLUMNS, 64, 64) in [-1, 1]
        run.save_sample_grid((specs.flip(1)[:, None] + 1) / 2, GRID_COLUMNS, period)  # high frequencies up
        # Every label once, spoken in turn (first column of the grid): what the grid sounds like.
        firsts = to_waves(specs[::GRID_COLUMNS], self.recipe.eval.quick_griffin_lim_iters)
        write_wav(run.samples_dir / f"epoch_{period:04d}.wav", join_words([trim_word(w) for w in firsts]).numpy())

    def quick_scores(self) -> dict[str, float]:
        labels = cycle_labels(self.recipe.eval.quick_samples, None, self.config.num_classes)
        waves = to_waves(
            draw_spectrograms(self.sampler, labels, self.recipe.seed + 3), self.recipe.eval.quick_griffin_lim_iters
        )
        quality = evaluate_clips(waves, self.evaluator, requested_labels=labels, reference=self.reference)
        return {
            "quality/label_accuracy": quality["accuracy"],
            "quality/label_error": 1 - quality["accuracy"],
            "quality/frechet_distance": quality["frechet_distance"],
        }
