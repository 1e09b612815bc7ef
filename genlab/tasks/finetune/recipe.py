"""The recipe schema of a fine-tuning run (`task: finetune`): a start model, a labelled data set, a
method (full / freeze / lora / adapter) and its optimiser — the essay's pretrain -> fine-tune framework."""

from __future__ import annotations

from dataclasses import dataclass, field

from genlab.core.recipe import EpochAdamWTrainConfig
from genlab.core.tracking import TrackingConfig
from genlab.evaluation.text_robustness import KINDS
from genlab.peft.methods import MethodConfig


@dataclass
class NoiseConfig:
    """Noisy training texts (classify), drawn afresh each step: a fraction `prob` of each batch is perturbed by
    one of `kinds` (genlab.evaluation.text_robustness) at a rate drawn uniformly from [0, rate]."""

    kinds: list[str] = field(default_factory=list)  # char | keyboard | synonym; none = clean training texts
    rate: float = 0.3  # the largest perturbation rate (fraction of letters or words changed)
    prob: float = 0.5  # the chance that a training text is perturbed

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"data.noise.kinds: unknown kind {unknown[0]!r} (known: {', '.join(KINDS)})")
        if not (0 <= self.rate <= 1 and 0 <= self.prob <= 1):
            raise ValueError("data.noise.rate and data.noise.prob must be in [0, 1]")


@dataclass
class FinetuneDataConfig:
    dataset: str = "fortunes"  # fortunes | modernize | translate, or a .jsonl file (see genlab/data/labelled.py)
    kind: str = "auto"  # classify | seq2seq for a .jsonl file; auto = from the named dataset or the file's keys
    max_tokens: int = 128  # classify: truncate longer texts; seq2seq: skip longer training pairs
    batch_size: int = 16
    limit: int = 0  # train on a seeded random `limit` of the training examples (0 = all)
    eval_limit: int = 0  # score `eval_limit` test examples spread evenly over the test split (0 = all of it)
    per_class: int = 0  # classify: train on `per_class` examples of each label (few-shot; 0 = all)
    subset_seed: int = 0  # which `per_class` examples, and in which order
    noise: NoiseConfig = field(default_factory=NoiseConfig)  # classify: perturb training texts on the fly

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "classify", "seq2seq"):
            raise ValueError(f"data.kind must be auto, classify or seq2seq, got {self.kind!r}")
        if min(self.max_tokens, self.batch_size) < 1 or min(self.limit, self.eval_limit) < 0:
            raise ValueError("data.max_tokens and data.batch_size must be >= 1, data.limit and eval_limit >= 0")
        if self.per_class < 0 or (self.per_class and self.limit):
            raise ValueError("data.per_class must be >= 0, and not set together with data.limit")


@dataclass
class FinetuneTrainConfig(EpochAdamWTrainConfig):
    epochs: int = 1
    lr: float = 1e-4
    min_lr: float = 1e-5
    warmup_iters: int = 20
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.01
    grad_clip: float = 1.0


@dataclass
class FinetuneEvalConfig:
    batch_size: int = 64
    max_new_tokens: int = 160  # seq2seq: longest generated target

    def __post_init__(self) -> None:
        if min(self.batch_size, self.max_new_tokens) < 1:
            raise ValueError("eval.batch_size and eval.max_new_tokens must be >= 1")


@dataclass
class FinetuneRecipe:
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
    tracking: TrackingConfig = field(default_factory=TrackingConfig)  # MLflow / W&B (docs/training.md)

    def __post_init__(self) -> None:
        if self.init not in ("pretrained", "random"):
            raise ValueError(f"init must be pretrained or random, got {self.init!r}")
