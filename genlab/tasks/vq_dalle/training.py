"""The token transformer's training: every training image tokenized once by the frozen VQGAN, a random
training caption of its class before its tokens (or the null caption, train.cond_dropout of the time),
next-token cross-entropy on the image tokens; AdamW, linear warm-up, cosine decay.

The VQGAN is saved in every checkpoint beside the transformer (module `vqgan`, never trained), so the
run generates, serves and evaluates from its own directory alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from genlab.core.distributed import DistEnv, wrap_ddp
from genlab.core.optim import adamw, cosine_lr, set_lr
from genlab.core.run import RunDir
from genlab.core.training import OwnNoise, SampledEachPeriod
from genlab.data import load_image_dataset
from genlab.evaluation.classifier import evaluator_or_none
from genlab.evaluation.image_eval import quick_quality
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.flow.text import CaptionBank
from genlab.tasks.vq_dalle.captions import CaptionTokenizer, caption_set
from genlab.tasks.vq_dalle.pipeline import draw, open_tokenizer, prefixes
from genlab.tasks.vq_dalle.process import token_loss
from genlab.tasks.vq_dalle.recipe import VQDalleRecipe
from genlab.tasks.vqgan.pipeline import tokenize

GRID_SIDE = 10  # sample grid: 10 x 10, column c shows a training caption of class c
QUICK_EVAL_SAMPLES = 500


def transformer_config(recipe: VQDalleRecipe, tokenizer: CaptionTokenizer, image_tokens: int) -> TransformerConfig:
    """The shared transformer for [caption][<image>][image tokens]: its vocabulary is the codes and the
    words, its context every position but the last image token's (which is only predicted)."""
    m = recipe.model
    return TransformerConfig(
        vocab_size=tokenizer.vocab_size,
        block_size=tokenizer.length + image_tokens,
        n_layer=m.n_layer,
        n_head=m.n_head,
        n_embd=m.n_embd,
        dropout=m.dropout,
    )


def model_meta(config: TransformerConfig, vqgan_config: Any, tokenizer: CaptionTokenizer) -> dict[str, Any]:
    """What the checkpoint's meta says about its weights: both networks' configs and the caption words."""
    return {
        "transformer": dataclasses.asdict(config),
        "vqgan": dataclasses.asdict(vqgan_config),
        "caption_tokens": tokenizer.length,
        "words": tokenizer.vocabulary,
    }


class VQDalleTraining(OwnNoise, SampledEachPeriod):
    best_metric = "quality/fid"

    def __init__(self, recipe: VQDalleRecipe, env: DistEnv, run: RunDir):
        data = load_image_dataset(recipe.data.name, recipe.data.path)
        self.vqgan = open_tokenizer(recipe.data.tokenizer, data.name).to(env.device)
        K, T = self.vqgan.config.codebook_size, self.vqgan.config.tokens
        texts, caption_labels = caption_set(data, held_out=False)
        self.tokenizer = CaptionTokenizer.from_captions(texts, K, recipe.data.caption_tokens)
        self.captions = CaptionBank(texts, caption_labels, self.tokenizer)  # rows of word ids
        self.recipe, self.env, self.data = recipe, env, data
        self.config = transformer_config(recipe, self.tokenizer, T)
        images, labels = data.tensors("train", recipe.data.limit)
        self.tokens = tokenize(self.vqgan, images).to(env.device)  # (N, 49): once, before training
        self.labels = labels
        torch.manual_seed(recipe.seed)  # identical initial weights on every rank
        self.model = Transformer(self.config).to(env.device)
        self.net = wrap_ddp(self.model, env)
        self.modules: dict[str, torch.nn.Module] = {"transformer": self.model, "vqgan": self.vqgan}
        t = recipe.train
        self.optimizers = {"transformer": adamw(self.model, t.lr, t.betas, t.weight_decay)}
        self.num_examples = len(self.tokens)
        self.total_steps = t.epochs * max(1, self.num_examples // recipe.data.batch_size)
        self.noise = torch.Generator().manual_seed(recipe.seed + 1)
        self.data_source = f"{data.name} from {data.source}, tokenized by {recipe.data.tokenizer}"
        self.evaluator = evaluator_or_none(data.name) if env.is_main else None

    def meta(self) -> dict[str, Any]:
        model = model_meta(self.config, self.vqgan.config, self.tokenizer)
        return {"task": "vq_dalle", "model": model, "dataset": self.recipe.data.name}

    def step_kind(self, step: int) -> str:
        return "transformer"

    def sequences(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, Lc + 1 + 49): a caption of each image's class (words read as <unk> at train.word_dropout, the null
        caption for a train.cond_dropout share of rows), <image>, the image's tokens."""
        t, tokenizer = self.recipe.train, self.tokenizer
        captions = self.captions.draw(self.labels[indices.cpu()], self.noise)  # (B, Lc)
        unknown = (torch.rand(captions.shape, generator=self.noise) < t.word_dropout) & (captions != tokenizer.pad)
        captions = captions.masked_fill(unknown, tokenizer.unk)  # held-out captions hold words never seen
        drop = torch.rand(len(indices), generator=self.noise) < t.cond_dropout
        captions = torch.where(drop[:, None], tokenizer.null_caption(), captions)
        return torch.cat([prefixes(captions, tokenizer).to(self.tokens.device), self.tokens[indices]], dim=1)

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        indices = indices.to(self.tokens.device)
        t = self.recipe.train
        set_lr(self.optimizers["transformer"], cosine_lr(step, t.lr, t.lr / 10, t.warmup_steps, self.total_steps))
        loss = token_loss(self.net, self.sequences(indices), self.vqgan.config.codebook_size, self.vqgan.config.tokens)
        self.optimizers["transformer"].zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip or float("inf"))
        self.optimizers["transformer"].step()
        return {"loss/tokens": loss.item(), "grad_norm": grad_norm.item()}

    def draw_in_turn(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.recipe.sample
        labels, rows = self.captions.cycle(n)
        images = draw(self.model, self.vqgan, self.tokenizer, rows, seed, s.guidance, s.temperature, s.top_k or None)
        return images, labels

    def save_samples(self, period: int, run: RunDir) -> None:
        images, _ = self.draw_in_turn(GRID_SIDE * GRID_SIDE, self.recipe.seed + 2)
        run.save_sample_grid(images, GRID_SIDE, period)

    def quick_scores(self) -> dict[str, float]:
        images, labels = self.draw_in_turn(QUICK_EVAL_SAMPLES, self.recipe.seed + 3)
        return quick_quality(images, self.data, self.evaluator, labels)
