"""The language-model training: GPT-style causal LM or BERT-style masked LM pretraining on a text corpus.

Per step: the global batch of `block_size` windows is drawn at random positions of the memory-mapped
training tokens by a generator seeded with (seed, step) alone, so a resumed run, or one split across
torchrun processes, sees exactly the windows of an uninterrupted single-process run; each process
then takes its slice and splits it into `grad_accum` micro-batches. Loss = task loss + lambda * L2.
A period of the trainer loop is `eval_interval` steps, after which end_period measures validation
loss and perplexity, writes a text sample and exports the model in a Hugging Face layout (GPT-2, Llama
or BERT) to RUN/model/.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any

import numpy as np
import torch

from genlab.core.distributed import DistEnv, barrier, unwrap, wrap_ddp
from genlab.core.muon import block_optimizer
from genlab.core.optim import cosine_lr, set_lr
from genlab.core.run import RunDir
from genlab.core.training import GlobalTorchRng, weights_meta
from genlab.data.tokens import corpus_source, corpus_texts, open_tokens, spaced_starts, windows, write_tokens
from genlab.errors import GenlabError
from genlab.interop.hf import export_model, hf_layout, unexportable
from genlab.io.files import atomic_write_text
from genlab.io.tokenizers import MASK, SPECIAL_TOKENS, Tokenizer, build_tokenizer, load_tokenizer
from genlab.models.generation import generate
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.lm.process import causal_lm_loss, mask_tokens, masked_lm_loss, total_loss
from genlab.tasks.lm.recipe import LMRecipe

SAMPLE_TOKENS = 200  # length of the text sample written after each evaluation
MASK_SEED = 1234  # fixed masking of evaluation batches, so every evaluation scores the same task


def model_config(recipe: LMRecipe, vocab_size: int) -> TransformerConfig:
    """GPT-2's layout for causal models unless the recipe picks the modern options (Llama's layout when it
    picks rotary + rmsnorm + swiglu); the original post-LN BERT (embedding LayerNorm, two segment
    embeddings, biases) for masked ones, so each exports to a Hugging Face layout."""
    m, causal = recipe.model, recipe.model.objective == "causal"
    bert = {} if causal else {"pre_ln": False, "type_vocab_size": 2}
    modern = {k: getattr(m, k) for k in ("positions", "norm", "qk_norm", "tie_head", "zero_init", "logit_softcap")}
    config = TransformerConfig(
        vocab_size=vocab_size,
        block_size=recipe.data.block_size,
        **m.sizes(),
        n_inner=m.n_inner or None,
        causal=causal,
        bias=m.bias,
        activation=m.activation if causal else "gelu",
        **bert,
        **modern,
    )  # GPT-2's tanh GELU / BERT's exact one
    if recipe.eval.hf_export and hf_layout(config) is None:  # found before training, not at the first export
        if not m.bias and unexportable(dataclasses.replace(config, bias=True)) == "":
            raise GenlabError(
                "model.bias=false: every evaluation exports the model in the Hugging Face GPT-2 or "
                "BERT layout, and both always have biases (Llama's need not: model.positions=rotary, "
                "norm=rmsnorm, activation=swiglu), or set eval.hf_export=false"
            )
        raise GenlabError(
            f"every evaluation exports the model in a Hugging Face layout and none fits this one "
            f"({unexportable(config)}): change the model or set eval.hf_export=false"
        )
    return config


def prepare_tokens(recipe: LMRecipe, run: RunDir, env: DistEnv) -> tuple[Tokenizer, dict[str, np.ndarray]]:
    """Build the tokenizer and the train/validation token files in the run directory once (main
    process), or reuse them when the run continues; every process then memory-maps them."""
    d = recipe.data
    tok_path = run.path / "tokenizer.json"
    bins = {split: run.path / f"{split}.bin" for split in ("train", "validation")}
    if env.is_main and not (run.exists() and tok_path.is_file() and all(p.is_file() for p in bins.values())):
        run.path.mkdir(parents=True, exist_ok=True)
        train_texts = corpus_texts(d.corpus, "train", d.limit_chars)
        if not train_texts:
            raise GenlabError(f"corpus {d.corpus!r} has no training text")
        tokenizer = build_tokenizer(d.tokenizer, train_texts, d.vocab_size)
        tokenizer.save(tok_path)
        write_tokens(bins["train"], train_texts, tokenizer)
        del train_texts
        write_tokens(bins["validation"], corpus_texts(d.corpus, "validation", d.limit_chars), tokenizer)
    barrier(env)
    tokenizer = load_tokenizer(tok_path)
    return tokenizer, {split: open_tokens(path, tokenizer.vocab_size) for split, path in bins.items()}


def special_ids(tokenizer: Tokenizer) -> list[int]:
    return [i for i in (tokenizer.token_id(t) for t in SPECIAL_TOKENS) if i is not None]


def lm_loss(model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Causal loss on ids (B, T) when labels is None, else masked-LM loss on the masked ids."""
    logits = model(ids).logits  # (B, T, V)
    return causal_lm_loss(logits, ids) if labels is None else masked_lm_loss(logits, labels)


@torch.inference_mode()  # no autograd bookkeeping at all: a few per cent of each evaluation
def estimate_loss(
    model: Transformer, tokenizer: Tokenizer, tokens: np.ndarray, batch_size: int, iters: int, device: torch.device
) -> float:
    """Mean loss over `iters` batches of windows spread evenly over `tokens` (the same every time)."""
    cfg = model.config
    was_training = model.training
    model.eval()
    masking = torch.Generator().manual_seed(MASK_SEED)
    starts = spaced_starts(len(tokens), cfg.block_size, iters * batch_size)
    losses = []
    for batch in starts.split(batch_size):
        ids = windows(tokens, batch, cfg.block_size)  # (B, T)
        labels = None
        if not cfg.causal:
            ids, labels = mask_tokens(
                ids, cfg.vocab_size, tokenizer.token_id(MASK), special_ids(tokenizer), generator=masking
            )
            labels = labels.to(device)
        losses.append(lm_loss(model, ids.to(device), labels).item())
    model.train(was_training)
    return sum(losses) / len(losses)


class LMTraining(GlobalTorchRng):
    best_metric = "val/loss"  # lower is better; the trainer keeps checkpoints/best by it

    def __init__(self, recipe: LMRecipe, env: DistEnv, run: RunDir):
        self.recipe, self.env = recipe, env
        d, t = recipe.data, recipe.train
        local_batch = d.batch_size // env.world_size
        if local_batch % t.grad_accum:
            raise GenlabError(
                f"data.batch_size={d.batch_size} over {env.world_size} process(es) gives "
                f"{local_batch} sequences each, not divisible by train.grad_accum={t.grad_accum}"
            )
        model_config(recipe, vocab_size=1)  # a model the recipe cannot build fails before the corpus is tokenized
        self.tokenizer, self.tokens = prepare_tokens(recipe, run, env)
        for split, tokens in self.tokens.items():
            if len(tokens) <= d.block_size:
                raise GenlabError(
                    f"the {split} split has {len(tokens)} tokens, not more than "
                    f"data.block_size={d.block_size}: use more text or a smaller block"
                )
        self.config = model_config(recipe, self.tokenizer.vocab_size)
        torch.manual_seed(recipe.seed)  # identical initial weights on every rank
        model = Transformer(self.config).to(env.device)
        self.model = wrap_ddp(model, env)
        self.modules = {"model": model}
        self.optimizers = {"model": block_optimizer(model, t)}
        self.num_examples = t.eval_interval * d.batch_size  # one loop period = one evaluation interval
        self.steps_done = 0  # the evaluation's step: a budget stop can end a period early
        self.mask_id = self.tokenizer.token_id(MASK)
        self.special = special_ids(self.tokenizer)
        self.data_source = (
            f"{corpus_source(d.corpus)}: {len(self.tokens['train']):,} train / "
            f"{len(self.tokens['validation']):,} validation tokens, {d.tokenizer} tokenizer "
            f"of {self.tokenizer.vocab_size}"
        )

    def meta(self) -> dict[str, Any]:
        return weights_meta("lm", self.config, corpus=self.recipe.data.corpus, tokenizer=self.recipe.data.tokenizer)

    def step_kind(self, step: int) -> str:
        return self.recipe.model.objective

    def _local_slice(self, global_draw: torch.Tensor) -> torch.Tensor:
        """This rank's share of a draw made for the whole global batch (same on every rank)."""
        local = len(global_draw) // self.env.world_size
        return global_draw[self.env.rank * local : (self.env.rank + 1) * local].to(self.env.device)

    def _batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's (ids, masked-LM labels or None) for `step`: (B_local, T) each."""
        d = self.recipe.data
        draw = torch.Generator().manual_seed(self.recipe.seed * 1_000_003 + step)
        train = self.tokens["train"]
        starts = torch.randint(len(train) - d.block_size + 1, (d.batch_size,), generator=draw)
        ids = windows(train, starts, d.block_size)  # (B_global, T): cheap, and makes masking rank-independent
        if self.config.causal:
            return self._local_slice(ids), None
        ids, labels = mask_tokens(ids, self.config.vocab_size, self.mask_id, self.special, generator=draw)
        return self._local_slice(ids), self._local_slice(labels)

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        # The loop's indices only count examples: windows are drawn from the step number instead.
        t = self.recipe.train
        self.steps_done = step + 1
        lr = cosine_lr(step, t.lr, t.min_lr, t.warmup_iters, t.max_iters)
        optimizer = self.optimizers["model"]
        set_lr(optimizer, lr)
        ids, labels = self._batch(step)
        micro_ids = ids.chunk(t.grad_accum)
        micro_labels = labels.chunk(t.grad_accum) if labels is not None else [None] * t.grad_accum
        task_loss = 0.0
        for i, (x, y) in enumerate(zip(micro_ids, micro_labels)):
            last = i == t.grad_accum - 1
            # DDP all-reduces gradients only on the last micro-batch; the others just accumulate.
            sync = contextlib.nullcontext() if last or not self.env.enabled else self.model.no_sync()
            with sync:
                loss = lm_loss(self.model, x, y)
                (total_loss(loss, self.modules["model"], t.reg_lambda) / t.grad_accum).backward()
            task_loss += loss.item() / t.grad_accum
        if t.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.modules["model"].parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return {"loss": task_loss, "lr": lr}

    def _sample(self) -> str:
        """A fixed-seed text sample: a continuation of a newline (GPT), or a fill-in of masked tokens (BERT)."""
        model = self.modules["model"]
        if self.config.causal:
            start = torch.tensor([self.tokenizer.encode("\n")], device=self.env.device)  # (1, 1)
            out = generate(model, start, SAMPLE_TOKENS, temperature=1.0, seed=self.recipe.seed)
            return self.tokenizer.decode(out[0, 1:].tolist())
        ids = windows(self.tokens["validation"], torch.tensor([0]), self.config.block_size)  # (1, T)
        masked, labels = mask_tokens(
            ids, self.config.vocab_size, self.mask_id, self.special, generator=torch.Generator().manual_seed(MASK_SEED)
        )
        with torch.no_grad():
            model.eval()
            guess = model(masked.to(self.env.device)).logits.argmax(-1).cpu()  # (1, T)
            model.train()
        filled = torch.where(labels >= 0, guess, ids)
        shown = [self.tokenizer.decode([i]) if i != self.mask_id else "_" for i in masked[0].tolist()]
        return f"masked:    {''.join(shown)}\nfilled in: {self.tokenizer.decode(filled[0].tolist())}\n"

    def end_period(self, period: int, run: RunDir) -> dict[str, float]:
        if not self.env.is_main:
            return {}
        r = self.recipe
        model = unwrap(self.model)
        loss = estimate_loss(
            model, self.tokenizer, self.tokens["validation"], r.data.batch_size, r.eval.eval_iters, self.env.device
        )
        best = min(loss, run.read_report().get("validation", {}).get("best_loss", loss))
        atomic_write_text(run.samples_dir / f"step_{self.steps_done:06d}.txt", self._sample())
        if r.eval.hf_export:
            export_model(model, self.tokenizer, run.path / "model")
        run.update_report(
            "validation", {"loss": loss, "perplexity": math.exp(loss), "step": self.steps_done, "best_loss": best}
        )
        return {"val/loss": loss, "val/perplexity": math.exp(loss)}
