"""The chorale training: genlab's causal transformer (genlab.models.transformer) on bar-aligned windows of the
interleaved S A T B grid.

Per step the batch's windows are drawn from every training window (each chorale's, starting at each bar) by a
generator seeded with (seed, step) alone, so a resumed run sees exactly the batches of an uninterrupted one. A
period is `eval_interval` steps, after which end_period measures the validation NLL per token and writes a
four-bar sample chorale as MIDI.
"""

from __future__ import annotations

from typing import Any

import torch

from genlab.core.distributed import DistEnv, unwrap, wrap_ddp
from genlab.core.optim import adamw, cosine_lr, set_lr
from genlab.core.run import RunDir
from genlab.core.training import weights_meta
from genlab.data.chorale_tokens import PAD_ID, VOCAB
from genlab.data.chorales import load_chorales, split_sequences
from genlab.errors import GenlabError
from genlab.io.music import write_midi
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.chorale.output import GeneratedChorales
from genlab.tasks.chorale.process import nll_per_token, window_loss, windows
from genlab.tasks.chorale.recipe import ChoraleRecipe
from genlab.tasks.chorale.sampling import sample_grids


def model_config(recipe: ChoraleRecipe) -> TransformerConfig:
    """GPT-2's layout at the recipe's size; the vocabulary is the fixed grid vocabulary."""
    m = recipe.model
    return TransformerConfig(
        vocab_size=len(VOCAB),
        block_size=recipe.data.block_size,
        n_layer=m.n_layer,
        n_head=m.n_head,
        n_embd=m.n_embd,
        dropout=m.dropout,
        activation="gelu_new",
        positions=m.positions,
    )


class ChoraleTraining:
    best_metric = "val/nll_per_token"

    def __init__(self, recipe: ChoraleRecipe, env: DistEnv, run: RunDir):
        if env.world_size > 1:
            raise GenlabError("chorale runs train in one process (a few hundred thousand weights)")
        self.recipe, self.env = recipe, env
        data = load_chorales(recipe.data.path)
        bars = recipe.data.window_bars
        self.train_ids = windows(split_sequences(data, "train"), bars)  # (N, 1 + 64 x bars)
        self.validation = split_sequences(data, "validation")
        if len(self.train_ids) < recipe.data.batch_size:
            raise GenlabError(f"{len(self.train_ids)} training windows, fewer than data.batch_size")
        self.config = model_config(recipe)
        torch.manual_seed(recipe.seed)
        model = Transformer(self.config).to(env.device)
        self.model = wrap_ddp(model, env)
        self.modules = {"model": model}
        t = recipe.train
        self.optimizers = {"model": adamw(model, t.lr, t.betas, t.weight_decay)}
        self.num_examples = t.eval_interval * recipe.data.batch_size
        self.steps_done = 0
        counts = {s: sum(c["split"] == s for c in data["chorales"]) for s in ("train", "validation", "test")}
        self.data_source = (
            f"{recipe.data.path or 'music21 Bach chorales'}: {counts['train']} train / {counts['validation']} "
            f"validation / {counts['test']} test chorales, {len(self.train_ids):,} windows of {bars} bars; "
            f"{data['duplicates']} duplicates and {sum(data['skipped'].values())} other scores left out"
        )

    def meta(self) -> dict[str, Any]:
        return weights_meta("chorale", self.config, vocab=list(VOCAB))

    def rng_state(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state()}  # dropout draws from the global generator

    def load_rng_state(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])

    def step_kind(self, step: int) -> str:
        return "causal"

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        # The loop's indices only count examples: windows are drawn from the step number instead.
        t = self.recipe.train
        self.steps_done = step + 1
        lr = cosine_lr(step, t.lr, t.min_lr, t.warmup_iters, t.max_iters)
        optimizer = self.optimizers["model"]
        set_lr(optimizer, lr)
        draw = torch.Generator().manual_seed(self.recipe.seed * 1_000_003 + step)
        ids = self.train_ids[torch.randint(len(self.train_ids), (self.recipe.data.batch_size,), generator=draw)]
        used = int((ids != PAD_ID).sum(dim=1).max())  # cut the all-pad columns
        loss = window_loss(self.model, ids[:, :used].to(self.env.device))
        loss.backward()
        if t.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.modules["model"].parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return {"loss": loss.item(), "lr": lr}

    def end_period(self, period: int, run: RunDir) -> dict[str, float]:
        if not self.env.is_main:
            return {}
        model = unwrap(self.model)
        nll = nll_per_token(model, self.validation, self.recipe.data.window_bars)
        grid = sample_grids(model, "major", 64, 1, seed=self.recipe.seed)
        write_midi(GeneratedChorales(grid).score(), run.samples_dir / f"step_{self.steps_done:06d}.mid")
        run.update_report("validation", {"nll_per_token": nll, "step": self.steps_done})
        return {"val/nll_per_token": nll}
