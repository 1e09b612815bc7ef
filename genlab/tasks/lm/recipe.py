"""The recipe schema of a language-model pretraining run (`task: lm`): GPT (causal) or BERT (masked).

Batches are drawn at random positions of the corpus, so the run is counted in optimiser steps, not
epochs: `train.max_iters` steps in all, with a validation loss, a text sample and a Hugging Face
export every `train.eval_interval` steps (one *period* of the trainer loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genlab.core.recipe import OptimizerChoice, StepTrainConfig, TransformerSize, recipe_type


@dataclass
class LMDataConfig:
    corpus: str | list[str] = "bible-kjv"  # a TEXT_CORPORA name, a .txt/.jsonl file or folder, or a list of them
    tokenizer: str = "char"  # char | bpe
    vocab_size: int = 1024  # BPE only; a char vocabulary is the characters seen in training
    block_size: int = 64  # context length in tokens
    batch_size: int = 12  # sequences per optimizer step, across all processes and accumulation steps
    limit_chars: int = 0  # keep only the first `limit_chars` characters of each split (0 = all); for tiny runs

    def __post_init__(self) -> None:
        if self.tokenizer not in ("char", "bpe"):
            raise ValueError(f"data.tokenizer must be char or bpe, got {self.tokenizer!r}")
        if min(self.vocab_size, self.block_size, self.batch_size) < 1 or self.limit_chars < 0:
            raise ValueError("data.vocab_size, block_size, batch_size must be >= 1 and data.limit_chars >= 0")
        if isinstance(self.corpus, list) and not self.corpus:
            raise ValueError("data.corpus must name at least one corpus")


@dataclass
class LMModelConfig(TransformerSize):
    bias: bool = True
    objective: str = "causal"  # causal (GPT, next token) | masked (BERT, 15% of tokens masked 80/10/10)
    # The modern small-GPT options (genlab.models.transformer; docs/text.md "Modern recipe and Muon"), causal only.
    # The defaults are GPT-2's; rotary + rmsnorm + swiglu (and nothing else) is the Llama layout.
    n_inner: int = 0  # MLP width; 0 = 4 * n_embd
    activation: str = "gelu_new"  # gelu_new (GPT-2) | relu2 | swiglu; masked models always use BERT's gelu
    positions: str = "learned"  # learned | rotary
    norm: str = "layernorm"  # layernorm | rmsnorm
    qk_norm: bool = False
    tie_head: bool = True
    zero_init: bool = False  # zero-initialised output projections (and untied head)
    logit_softcap: float = 0.0  # 0 = off

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.objective not in ("causal", "masked"):
            raise ValueError(f"model.objective must be causal or masked, got {self.objective!r}")
        for name, allowed in (
            ("activation", ("gelu_new", "relu2", "swiglu")),
            ("positions", ("learned", "rotary")),
            ("norm", ("layernorm", "rmsnorm")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"model.{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.n_inner < 0 or not 0 <= self.logit_softcap < float("inf"):
            raise ValueError("model.n_inner must be >= 0 and model.logit_softcap a finite number >= 0 (0 = off)")
        modern = {
            "activation": "gelu_new",
            "positions": "learned",
            "norm": "layernorm",
            "qk_norm": False,
            "tie_head": True,
            "zero_init": False,
            "logit_softcap": 0.0,
        }
        changed = [k for k, default in modern.items() if getattr(self, k) != default]
        if self.objective == "masked" and changed:
            raise ValueError(f"model.{changed[0]} is a causal-model option; masked models keep BERT's layout")


@dataclass
class LMTrainConfig(StepTrainConfig, OptimizerChoice):
    grad_accum: int = 1  # micro-batches per optimizer step (per process)
    reg_lambda: float = 0.0  # lambda of L = L_task + lambda * L2(weights), the essay's explicit regularizer

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_optimizer()
        if self.optimizer == "muon" and self.lr <= 0:
            raise ValueError("train.optimizer=muon needs train.lr > 0 (Muon follows lr's schedule)")
        if self.grad_accum < 1 or self.reg_lambda < 0:
            raise ValueError("train.grad_accum must be >= 1 and train.reg_lambda >= 0")


@dataclass
class LMEvalConfig:
    eval_iters: int = 50  # validation batches per evaluation
    hf_export: bool = True  # write RUN/model/ in a Hugging Face layout at each evaluation (the model must fit one)

    def __post_init__(self) -> None:
        if self.eval_iters < 1:
            raise ValueError("eval.eval_iters must be >= 1")


LMRecipe = recipe_type("lm", data=LMDataConfig, model=LMModelConfig, train=LMTrainConfig, eval=LMEvalConfig)


def upgrade_tree(tree: dict[str, Any]) -> dict[str, Any]:
    """Runs made before the rename counted steps as `train.epochs` x `train.eval_interval`."""
    train = tree.get("train")
    if isinstance(train, dict) and "epochs" in train and "max_iters" not in train:
        train = dict(train)
        train["max_iters"] = train.pop("epochs") * train.get("eval_interval", LMTrainConfig.eval_interval)
        tree = {**tree, "train": train}
    return tree
