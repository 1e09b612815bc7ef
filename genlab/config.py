"""Typed recipes: dataclasses loaded from YAML, `key.sub=value` overrides, unknown keys rejected.

A recipe file is one reproducible experiment. Every section is a dataclass whose fields carry types;
`from_dict` checks each value against its field's type so a typo or a wrong type fails with one
line naming the key, before anything is trained.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genlab.errors import GenlabError
from genlab.models.gan import GANConfig


@dataclass
class DataConfig:
    name: str = "mnist"
    path: str | None = None  # a folder of IDX files, instead of searching for `name`
    batch_size: int = 128  # global batch: split across processes under torchrun
    limit: int = 0  # train on the first `limit` training images only (0 = all); for tiny runs

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.limit < 0:
            raise ValueError("data.batch_size must be >= 1 and data.limit >= 0")


def _check_betas(betas: list[float]) -> None:
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError("train.betas must be two numbers in [0, 1)")


@dataclass
class TrainConfig:
    """What every task's training loop needs; tasks extend it with their optimiser settings."""

    epochs: int = 100
    max_minutes: float = 0.0  # stop after this wall-clock budget (0 = no budget)
    sample_every: int = 1  # epochs between samples / quick evaluation
    checkpoint_every: int = 1  # epochs between checkpoints
    device: str = "auto"  # auto | cpu | cuda
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("train.epochs must be >= 1")
        if self.max_minutes < 0:
            raise ValueError("train.max_minutes must be >= 0")
        if self.sample_every < 1 or self.checkpoint_every < 1:
            raise ValueError("train.sample_every and train.checkpoint_every must be >= 1")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError("train.device must be auto, cpu or cuda")


@dataclass
class GanTrainConfig(TrainConfig):
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    r1_gamma: float = 0.0  # weight of the R1 gradient penalty on real data (0 = off)
    r1_every: int = 4  # lazy R1: apply it every k steps with its weight scaled by k (StyleGAN2)
    augment_shift: int = 0  # DiffAugment: translate D's inputs (real and fake) by up to this many pixels
    ema_decay: float = 0.0  # sample from an exponential moving average of G's weights (0 = off)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_betas(self.betas)
        if not 0 <= self.ema_decay < 1:
            raise ValueError("train.ema_decay must be in [0, 1)")
        if self.r1_every < 1:
            raise ValueError("train.r1_every must be >= 1")
        if min(self.lr_g, self.lr_d) <= 0 or min(self.r1_gamma, self.augment_shift) < 0:
            raise ValueError("train learning rates must be > 0; r1_gamma and augment_shift >= 0")


@dataclass
class EvalConfig:
    num_samples: int = 10_000
    batch_size: int = 1000

    def __post_init__(self) -> None:
        if self.num_samples < 1 or self.batch_size < 1:
            raise ValueError("eval.num_samples and eval.batch_size must be >= 1")


@dataclass
class GanRecipe:
    name: str = "experiment"
    task: str = "gan"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: GANConfig = field(default_factory=GANConfig)
    train: GanTrainConfig = field(default_factory=GanTrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


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
class LMModelConfig:
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    objective: str = "causal"  # causal (GPT, next token) | masked (BERT, 15% of tokens masked 80/10/10)

    def __post_init__(self) -> None:
        if self.objective not in ("causal", "masked"):
            raise ValueError(f"model.objective must be causal or masked, got {self.objective!r}")
        if min(self.n_layer, self.n_head, self.n_embd) < 1 or self.n_embd % self.n_head:
            raise ValueError("model.n_layer, n_head, n_embd must be >= 1 and n_embd divisible by n_head")
        if not 0 <= self.dropout < 1:
            raise ValueError("model.dropout must be in [0, 1)")


@dataclass
class LMTrainConfig(TrainConfig):
    """`epochs` are evaluation periods of `eval_interval` steps: epochs x eval_interval steps in all."""

    epochs: int = 8
    eval_interval: int = 250
    lr: float = 1e-3
    min_lr: float = 1e-4  # cosine decay ends here, at the last step
    warmup_iters: int = 100  # linear warm-up from 0 to lr
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.1  # AdamW, on weight matrices and embeddings only
    grad_clip: float = 1.0  # max global gradient norm (0 = off)
    grad_accum: int = 1  # micro-batches per optimizer step (per process)
    reg_lambda: float = 0.0  # lambda of L = L_task + lambda * L2(weights), the essay's explicit regularizer

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_betas(self.betas)
        if self.eval_interval < 1 or self.grad_accum < 1 or self.warmup_iters < 0:
            raise ValueError("train.eval_interval and train.grad_accum must be >= 1, train.warmup_iters >= 0")
        if not 0 <= self.min_lr <= self.lr or min(self.weight_decay, self.grad_clip, self.reg_lambda) < 0:
            raise ValueError("train needs 0 <= min_lr <= lr and weight_decay, grad_clip, reg_lambda >= 0")

    @property
    def max_iters(self) -> int:
        return self.epochs * self.eval_interval


@dataclass
class LMEvalConfig:
    eval_iters: int = 50  # validation batches per evaluation

    def __post_init__(self) -> None:
        if self.eval_iters < 1:
            raise ValueError("eval.eval_iters must be >= 1")


@dataclass
class LMRecipe:
    name: str = "experiment"
    task: str = "lm"
    seed: int = 0
    data: LMDataConfig = field(default_factory=LMDataConfig)
    model: LMModelConfig = field(default_factory=LMModelConfig)
    train: LMTrainConfig = field(default_factory=LMTrainConfig)
    eval: LMEvalConfig = field(default_factory=LMEvalConfig)


FINETUNE_METHODS = ("full", "freeze", "lora", "adapter")


@dataclass
class FinetuneDataConfig:
    dataset: str = "fortunes"  # fortunes | modernize | translate, or a .jsonl file (see genlab/data/finetune.py)
    kind: str = "auto"  # classify | seq2seq for a .jsonl file; auto = from the named dataset or the file's keys
    max_tokens: int = 128  # classify: truncate longer texts; seq2seq: skip longer training pairs
    batch_size: int = 16
    limit: int = 0  # train on a seeded random `limit` of the training examples (0 = all)
    eval_limit: int = 0  # score `eval_limit` test examples spread evenly over the test split (0 = all of it)

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "classify", "seq2seq"):
            raise ValueError(f"data.kind must be auto, classify or seq2seq, got {self.kind!r}")
        if min(self.max_tokens, self.batch_size) < 1 or min(self.limit, self.eval_limit) < 0:
            raise ValueError("data.max_tokens and data.batch_size must be >= 1, data.limit and eval_limit >= 0")


@dataclass
class MethodConfig:
    """How much of the pretrained model trains (the essay's full vs parameter-efficient fine-tuning)."""

    name: str = "full"  # full | freeze | lora | adapter
    top_k: int = 1  # freeze: train only the top k blocks (and the head)
    rank: int = 8  # lora
    alpha: float = 16.0  # lora: the update is scaled by alpha / rank
    dropout: float = 0.0  # lora
    target_modules: list[str] = field(default_factory=lambda: ["attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"])
    bottleneck: int = 32  # adapter

    def __post_init__(self) -> None:
        if self.name not in FINETUNE_METHODS:
            raise ValueError(f"method.name must be one of {', '.join(FINETUNE_METHODS)}, got {self.name!r}")
        if self.top_k < 0 or self.bottleneck < 1:
            raise ValueError("method.top_k must be >= 0 and method.bottleneck >= 1")


@dataclass
class FinetuneTrainConfig(TrainConfig):
    epochs: int = 1
    lr: float = 1e-4
    min_lr: float = 1e-5
    warmup_iters: int = 20
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.01
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_betas(self.betas)
        if not 0 <= self.min_lr <= self.lr or self.lr <= 0 or min(self.weight_decay, self.grad_clip,
                                                                  self.warmup_iters) < 0:
            raise ValueError("train needs 0 <= min_lr <= lr, lr > 0 and weight_decay, grad_clip, warmup_iters >= 0")


@dataclass
class FinetuneEvalConfig:
    batch_size: int = 64
    max_new_tokens: int = 160  # seq2seq: longest generated target

    def __post_init__(self) -> None:
        if min(self.batch_size, self.max_new_tokens) < 1:
            raise ValueError("eval.batch_size and eval.max_new_tokens must be >= 1")


@dataclass
class FinetuneRecipe:
    """Fine-tune a pretrained model on a labelled task (the essay's pretrain -> fine-tune framework)."""

    name: str = "experiment"
    task: str = "finetune"
    seed: int = 0
    # minilm | a genlab language-model run directory | a Hugging Face BERT or GPT-2 folder
    start: str = "minilm"
    init: str = "pretrained"  # pretrained | random (same shape, fresh weights: what pretraining buys)
    data: FinetuneDataConfig = field(default_factory=FinetuneDataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    eval: FinetuneEvalConfig = field(default_factory=FinetuneEvalConfig)

    def __post_init__(self) -> None:
        if self.init not in ("pretrained", "random"):
            raise ValueError(f"init must be pretrained or random, got {self.init!r}")


# task name -> its recipe schema; a recipe's top-level `task:` key picks one (default gan)
RECIPE_TYPES: dict[str, type] = {"gan": GanRecipe, "lm": LMRecipe, "finetune": FinetuneRecipe}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check_value(value: Any, tp: Any, key: str) -> Any:
    """Return value converted to tp (int -> float only), or raise GenlabError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            if option is type(None) and value is None:
                return None
            try:
                return _check_value(value, option, key)
            except GenlabError:
                continue
        raise GenlabError(f"recipe key '{key}' must be {_type_name(tp)}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise GenlabError(f"recipe key '{key}' must be a list, got {value!r}")
        return [_check_value(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        raise GenlabError(f"recipe key '{key}' must be {_type_name(tp)}, got {value!r}")
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a nested dict, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise GenlabError(f"recipe section '{prefix.rstrip('.') or 'top level'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise GenlabError(f"unknown recipe key '{prefix}{unknown[0]}' (known: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in data.items():
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(tp, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _check_value(value, tp, prefix + key)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise GenlabError(f"bad recipe: {exc}") from None


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Apply `a.b=value` to a nested dict; the value is parsed as YAML (3 -> int, 1e-3 -> float)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise GenlabError(f"override '{assignment}' must look like key.sub=value")
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise GenlabError(f"override '{assignment}': '{part}' is not a section")
    value = yaml.safe_load(raw)
    # YAML reads "1e-3" as a string; accept the common float spellings people type.
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    node[leaf] = value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise GenlabError(f"cannot read recipe {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise GenlabError(f"recipe {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(tree, dict):
        raise GenlabError(f"recipe {path} must be a YAML mapping")
    return tree


def resolve_recipe_path(name_or_path: str) -> Path:
    """A path, or the name of a recipe shipped in recipes/ (with or without .yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = Path(__file__).resolve().parent.parent / "recipes" / f"{path.stem}.yaml"
    if shipped.is_file():
        return shipped
    raise GenlabError(f"recipe '{name_or_path}' not found (no such file, and not in recipes/)")


def recipe_from_tree(tree: dict[str, Any]) -> Any:
    """The typed recipe for a nested dict, by its `task` key."""
    task = tree.get("task", "gan")
    if task not in RECIPE_TYPES:
        raise GenlabError(f"unknown task '{task}' (known: {', '.join(RECIPE_TYPES)})")
    return from_dict(RECIPE_TYPES[task], tree)


def load_recipe(name_or_path: str | Path, overrides: list[str] = ()) -> Any:
    tree = _read_yaml(resolve_recipe_path(str(name_or_path)))
    for assignment in overrides:
        apply_override(tree, assignment)
    return recipe_from_tree(tree)


def recipe_to_dict(recipe: Any) -> dict[str, Any]:
    return dataclasses.asdict(recipe)
