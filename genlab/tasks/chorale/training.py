"""The chorale training: genlab's causal transformer (genlab.models.transformer) on bar-aligned windows of the
interleaved S A T B grid.

Per step the batch's windows are drawn from every training window (each chorale's, starting at each bar) by a
generator seeded with (seed, step) alone, so a resumed run sees exactly the batches of an uninterrupted one. A
period is `eval_interval` steps, after which end_period measures the validation NLL per token and writes a
four-bar sample chorale as MIDI.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from genlab.core.distributed import DistEnv, unwrap, wrap_ddp
from genlab.core.muon import block_optimizer
from genlab.core.run import RunDir
from genlab.core.training import weights_meta
from genlab.data.chorale_tokens import VOCAB
from genlab.data.chorales import load_chorales, split_sequences
from genlab.errors import GenlabError
from genlab.io.music import write_midi
from genlab.models.transformer import Transformer
from genlab.tasks.chorale.output import GeneratedChorales
from genlab.tasks.chorale.process import nll_per_token, windows
from genlab.tasks.chorale.recipe import ChoraleRecipe
from genlab.tasks.chorale.sampling import sample_grids
from genlab.tasks.folk.training import FolkTraining
from genlab.tasks.folk.training import model_config as folk_config


class ChoraleTraining(FolkTraining):
    """The folk training's steps (train_step draws `self.tunes["train"]` rows by step) on chorale windows."""

    best_metric = "val/nll_per_token"

    def __init__(self, recipe: ChoraleRecipe, env: DistEnv, run: RunDir):
        if env.world_size > 1:
            raise GenlabError("chorale runs train in one process (a few hundred thousand weights)")
        self.recipe, self.env = recipe, env
        data = load_chorales(recipe.data.path)
        bars = recipe.data.window_bars
        self.tunes = {"train": windows(split_sequences(data, "train"), bars)}  # (N, 1 + 64 x bars)
        self.validation = split_sequences(data, "validation")
        if len(self.tunes["train"]) < recipe.data.batch_size:
            raise GenlabError(f"{len(self.tunes['train'])} training windows, fewer than data.batch_size")
        self.config = dataclasses.replace(folk_config(recipe), vocab_size=len(VOCAB))  # the folk layout, our tokens
        torch.manual_seed(recipe.seed)
        model = Transformer(self.config).to(env.device)
        self.model = wrap_ddp(model, env)
        self.modules = {"model": model}
        t = recipe.train
        self.optimizers = {"model": block_optimizer(model, t)}
        self.lengths, self.by_length = torch.full((len(self.tunes["train"]),), self.config.block_size), False
        self.num_examples = t.eval_interval * recipe.data.batch_size
        self.steps_done = 0
        counts = {s: sum(c["split"] == s for c in data["chorales"]) for s in ("train", "validation", "test")}
        self.data_source = (
            f"{recipe.data.path or 'music21 Bach chorales'}: {counts['train']} train / {counts['validation']} "
            f"validation / {counts['test']} test chorales, {len(self.tunes['train']):,} windows of {bars} bars; "
            f"{data['duplicates']} duplicates and {sum(data['skipped'].values())} other scores left out"
        )

    def meta(self) -> dict[str, Any]:
        return weights_meta("chorale", self.config, vocab=list(VOCAB))

    def end_period(self, period: int, run: RunDir) -> dict[str, float]:
        if not self.env.is_main:
            return {}
        model = unwrap(self.model)
        nll = nll_per_token(model, self.validation, self.recipe.data.window_bars)
        grid = sample_grids(model, "major", 64, 1, seed=self.recipe.seed)
        write_midi(GeneratedChorales(grid).score(), run.samples_dir / f"step_{self.steps_done:06d}.mid")
        run.update_report("validation", {"nll_per_token": nll, "step": self.steps_done})
        return {"val/nll_per_token": nll}
