"""The folk-tune training: genlab's causal transformer (genlab.models.transformer) on whole tunes.

Per step the batch's tunes are drawn from the training split by a generator seeded with (seed, step) alone,
so a resumed run sees exactly the batches of an uninterrupted one. A period is `eval_interval` steps, after
which end_period measures the validation loss and NLL per note event and writes sample tunes as ABC.
"""

from __future__ import annotations

from typing import Any

import torch

from genlab.core.distributed import DistEnv, unwrap, wrap_ddp
from genlab.core.muon import block_optimizer
from genlab.core.optim import cosine_lr, set_lr
from genlab.core.run import RunDir
from genlab.core.training import GlobalTorchRng, weights_meta
from genlab.data.folk import load_folk, split_tokens
from genlab.data.folk_abc import abc_text
from genlab.data.folk_tokens import VOCAB, Header
from genlab.errors import GenlabError
from genlab.io.files import atomic_write_text
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.folk.grammar import sample_in_metre
from genlab.tasks.folk.process import PAD_ID, draw_rows, nll_per_note, tune_loss, tune_tensor
from genlab.tasks.folk.recipe import FolkRecipe

SAMPLE_HEADERS = (Header("6/8", "major", "jig"), Header("4/4", "dorian", "reel"))  # written after each period


def model_config(recipe: FolkRecipe) -> TransformerConfig:
    """GPT-2's layout at the recipe's size; the vocabulary is the fixed event vocabulary."""
    m = recipe.model
    return TransformerConfig(
        vocab_size=len(VOCAB),
        block_size=recipe.data.block_size,
        **m.sizes(),
        activation="gelu_new",
        positions=m.positions,
    )


def load_splits(recipe: FolkRecipe) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The train and validation tunes as padded ids (N, block), and the corpus's bookkeeping."""
    d = recipe.data
    data = load_folk(d.corpus, d.path)
    tensors = {split: tune_tensor(split_tokens(data, split), d.block_size) for split in ("train", "validation")}
    if len(tensors["train"]) < d.batch_size:
        raise GenlabError(f"{len(tensors['train'])} training tunes, fewer than data.batch_size={d.batch_size}")
    return tensors, data


class FolkTraining(GlobalTorchRng):
    best_metric = "val/nll_per_note"

    def __init__(self, recipe: FolkRecipe, env: DistEnv, run: RunDir):
        if env.world_size > 1:
            raise GenlabError("folk runs train in one process (a few hundred thousand weights)")
        self.recipe, self.env = recipe, env
        self.tunes, data = load_splits(recipe)
        self.config = model_config(recipe)
        torch.manual_seed(recipe.seed)
        model = Transformer(self.config).to(env.device)
        self.model = wrap_ddp(model, env)
        self.modules = {"model": model}
        t = recipe.train
        self.optimizers = {"model": block_optimizer(model, t)}
        self.lengths = (self.tunes["train"] != PAD_ID).sum(dim=1)  # (N,) tokens of each training tune
        self.by_length = recipe.data.by_length
        self.num_examples = t.eval_interval * recipe.data.batch_size
        self.steps_done = 0
        real = int((self.tunes["train"] != PAD_ID).sum())
        self.data_source = (
            f"{recipe.data.path or ' + '.join(recipe.data.corpus)} (music21 corpus ABC): "
            f"{len(self.tunes['train'])} train / {len(self.tunes['validation'])} validation tunes, "
            f"{real:,} train tokens; {data['duplicates']} duplicates and {sum(data['skipped'].values())} "
            f"unreadable tunes left out"
        )

    def meta(self) -> dict[str, Any]:
        return weights_meta("folk", self.config, vocab=list(VOCAB))

    def step_kind(self, step: int) -> str:
        return "causal"

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        # The loop's indices only count examples: tunes are drawn from the step number instead.
        t, train = self.recipe.train, self.tunes["train"]
        self.steps_done = step + 1
        lr = cosine_lr(step, t.lr, t.min_lr, t.warmup_iters, t.max_iters)
        optimizer = self.optimizers["model"]
        set_lr(optimizer, lr)
        draw = torch.Generator().manual_seed(self.recipe.seed * 1_000_003 + step)
        rows = draw_rows(self.lengths, self.recipe.data.batch_size, draw, self.by_length)
        ids = train[rows]  # (B, block)
        used = int((ids != PAD_ID).sum(dim=1).max())  # cut the all-pad columns: shorter tunes, cheaper steps
        loss = tune_loss(self.model, ids[:, :used].to(self.env.device))
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
        validation = self.tunes["validation"]
        with torch.inference_mode():
            model.eval()
            loss = float(tune_loss(model, validation))
            model.train()
        per_note = nll_per_note(model, validation)
        texts = []
        for number, header in enumerate(SAMPLE_HEADERS, start=1):
            tune = sample_in_metre(model, header.tokens(), 1, seed=self.recipe.seed + number)[0]
            texts.append(abc_text(tune, "D", number, f"Sample {number} at step {self.steps_done}"))
        atomic_write_text(run.samples_dir / f"step_{self.steps_done:06d}.abc", "\n".join(texts))
        run.update_report("validation", {"loss": loss, "nll_per_note": per_note, "step": self.steps_done})
        return {"val/loss": loss, "val/nll_per_note": per_note}
