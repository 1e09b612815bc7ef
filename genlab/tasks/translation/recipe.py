"""The recipe schema of a translation run (`task: translation`): an encoder-decoder transformer trained on
verse-aligned Bibles split by book (genlab.data.parallel).

Batches are whole epochs of the training pairs in length-bucketed order, counted in optimiser steps:
`train.max_iters` steps in all, with a greedy BLEU/chrF on the validation books every
`train.eval_interval` steps (one *period* of the trainer loop): the quality/cost curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genlab.core.recipe import OptimizerChoice, StepTrainConfig, recipe_type
from genlab.data.parallel import TEST_BOOKS, VALIDATION_BOOKS


@dataclass
class TranslationDataConfig:
    source: str = "web"  # Bible version translated from: web | kjv | rv1909
    target: str = "rv1909"  # ... and into
    path: str | None = None  # a .jsonl of {"book", "source", "target"} records instead of the Bibles
    test_books: list[str] = field(default_factory=lambda: list(TEST_BOOKS))
    validation_books: list[str] = field(default_factory=lambda: list(VALIDATION_BOOKS))
    vocab_size: int = 6000  # one byte-level BPE vocabulary for both languages
    max_tokens: int = 128  # training pairs with a longer side are skipped
    batch_size: int = 32  # sentence pairs per optimiser step
    limit: int = 0  # train on the first `limit` pairs only (0 = all)

    def __post_init__(self) -> None:
        if self.vocab_size < 262 or self.max_tokens < 2 or self.batch_size < 1 or self.limit < 0:
            raise ValueError("data.vocab_size must be >= 262, max_tokens >= 2, batch_size >= 1, limit >= 0")


@dataclass
class TranslationModelConfig:
    n_enc_layer: int = 3
    n_dec_layer: int = 3
    n_head: int = 4
    n_embd: int = 192
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if min(self.n_enc_layer, self.n_dec_layer, self.n_head, self.n_embd) < 1 or self.n_embd % self.n_head:
            raise ValueError("model layers, n_head, n_embd must be >= 1 and n_embd divisible by n_head")
        if not 0 <= self.dropout < 1:
            raise ValueError("model.dropout must be in [0, 1)")


@dataclass
class TranslationTrainConfig(StepTrainConfig, OptimizerChoice):
    warmup_iters: int = 200
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    weight_decay: float = 0.01
    label_smoothing: float = 0.1  # the target distribution puts this mass uniformly over the vocabulary

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_optimizer()
        if not 0 <= self.label_smoothing < 1:
            raise ValueError("train.label_smoothing must be in [0, 1)")


@dataclass
class TranslationEvalConfig:
    batch_size: int = 64  # sources decoded together (greedy)
    max_new_tokens: int = 160
    beam: int = 4  # `genlab eval`'s beam width (greedy is scored too)
    length_penalty: float = 1.0  # beam hypotheses are ranked by log p / length^length_penalty
    val_examples: int = 200  # validation pairs scored (greedy) at each period: the quality/cost curve
    limit: int = 0  # test pairs scored by `genlab eval` (0 = all)

    def __post_init__(self) -> None:
        if min(self.batch_size, self.max_new_tokens, self.beam, self.val_examples) < 1 or self.limit < 0:
            raise ValueError("eval.batch_size, max_new_tokens, beam, val_examples must be >= 1 and limit >= 0")
        if not 0 <= self.length_penalty <= 5:
            raise ValueError("eval.length_penalty must be in [0, 5]")


TranslationRecipe = recipe_type(
    "translation",
    data=TranslationDataConfig,
    model=TranslationModelConfig,
    train=TranslationTrainConfig,
    eval=TranslationEvalConfig,
)
