"""The fine-tuning task: a pretrained transformer + task adaptation layer + task loss, trained by one
of the essay's methods (full, freeze the lower layers, LoRA, bottleneck adapters).

- classify: text -> label through genlab.models.classifier (cross-entropy on the label);
- seq2seq:  "source <bos> target <eos>" as one sequence for a causal model; the loss covers the
  target tokens and <eos> only, so the model learns p(target | source) and not the source itself.

Examples are tokenized once; each step collates the trainer's indices into a right-padded batch.
After every epoch: validation macro-F1 / accuracy (classify) or target loss (seq2seq), and for lora
and adapter runs the small delta file RUN/adapter/ that `genlab eval` puts back on the base.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F

from genlab.config import FinetuneRecipe
from genlab.data.finetune import FINETUNE_DATASETS, TaskData, load_task_data
from genlab.errors import GenlabError
from genlab.evaluation.text_metrics import accuracy, macro_f1
from genlab.models.classifier import SequenceClassifier
from genlab.models.delta import PARAMETER_EFFICIENT, apply_method, save_delta
from genlab.models.lora import trainable_parameter_count
from genlab.models.starts import load_start
from genlab.models.transformer import Transformer
from genlab.text_objectives import IGNORE_INDEX
from genlab.tokenizers import BOS, EOS, PAD, Tokenizer
from genlab.tracking import RunDir
from genlab.training.distributed import DistEnv, unwrap, wrap_ddp
from genlab.training.lm import cosine_lr, make_optimizer

VALIDATION_PAIRS = 256  # seq2seq validation loss is measured on this many validation pairs


@dataclasses.dataclass
class Encoded:
    ids: list[list[int]]
    targets: list[int]  # classify: the label id; seq2seq: the position of the first target token


class Codec:
    """Turns examples into token ids and batches, the same way for training, evaluation and serving."""

    def __init__(self, tokenizer: Tokenizer, kind: str, labels: list[str], max_tokens: int, block_size: int):
        self.tokenizer, self.kind, self.labels = tokenizer, kind, labels
        self.max_tokens = min(max_tokens, block_size)
        self.block_size = block_size
        self.label_ids = {label: i for i, label in enumerate(labels)}
        first = next((i for i in (tokenizer.token_id(t) for t in (PAD, "[PAD]")) if i is not None), None)
        self.pad_id = first if first is not None else 0
        self.sep_id = tokenizer.token_id(BOS)
        self.eos_id = tokenizer.token_id(EOS)
        if kind == "seq2seq" and (self.sep_id is None or self.eos_id is None):
            raise GenlabError(f"a seq2seq task needs {BOS} and {EOS} in the tokenizer; this start has none")

    def source_ids(self, source: str) -> list[int]:
        """The prompt of a seq2seq model: source tokens then <bos>, which asks for the target."""
        if not source.strip():
            raise GenlabError("the source text is empty")
        ids = self.tokenizer.encode(source) + [self.sep_id]
        if len(ids) >= self.block_size:
            raise GenlabError(f"the source is {len(ids)} tokens; the model's context is {self.block_size}")
        return ids

    def encode(self, examples: list[tuple[str, str]], skip_long: bool) -> tuple[Encoded, int]:
        """-> encoded examples and how many seq2seq pairs were skipped for being longer than max_tokens."""
        ids, targets, skipped = [], [], 0
        for text, label in examples:
            if self.kind == "classify":
                ids.append(self.tokenizer.encode(text)[:self.max_tokens] or [self.pad_id])
                targets.append(self.label_ids[label])
                continue
            source = self.source_ids(text)
            seq = source + self.tokenizer.encode(label) + [self.eos_id]
            if len(seq) > (self.max_tokens if skip_long else self.block_size):
                skipped += 1
                continue
            ids.append(seq)
            targets.append(len(source))
        return Encoded(ids, targets), skipped

    def batch(self, data: Encoded, indices: list[int], device: torch.device) -> tuple[torch.Tensor, ...]:
        """-> ids (B, T) right-padded, attention mask (B, T), labels ((B,) classify, (B, T) seq2seq)."""
        rows = [data.ids[i] for i in indices]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for r, (row, i) in enumerate(zip(rows, indices)):
            ids[r, :len(row)] = torch.tensor(row)
            mask[r, :len(row)] = 1
            if self.kind == "seq2seq":
                labels[r, data.targets[i]:len(row)] = ids[r, data.targets[i]:len(row)]
        if self.kind == "classify":
            labels = torch.tensor([data.targets[i] for i in indices])
        return ids.to(device), mask.to(device), labels.to(device)


def build_model(backbone: Transformer, kind: str, num_labels: int) -> torch.nn.Module:
    if kind == "classify":
        return SequenceClassifier(backbone, num_labels)
    if not backbone.config.causal:
        raise GenlabError("a seq2seq task needs a causal (GPT) start; this start is a bidirectional encoder")
    return backbone


def task_loss(model: torch.nn.Module, codec: Codec, ids, mask, labels) -> torch.Tensor:
    if codec.kind == "classify":
        return F.cross_entropy(model(ids, mask), labels)
    logits = model(ids).logits  # (B, T, V); right padding only follows the real tokens, so no mask
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE_INDEX)


def by_length(data: Encoded, batch_size: int) -> list[list[int]]:
    """Example indices in batches of similar length: little padding when evaluating."""
    order = sorted(range(len(data.ids)), key=lambda i: len(data.ids[i]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def predict_labels(model: torch.nn.Module, codec: Codec, data: Encoded, batch_size: int,
                   device: torch.device) -> list[int]:
    was_training = model.training
    model.eval()
    predicted = [0] * len(data.ids)
    for batch in by_length(data, batch_size):
        ids, mask, _ = codec.batch(data, batch, device)
        for i, p in zip(batch, model(ids, mask).argmax(-1).tolist()):
            predicted[i] = p
    model.train(was_training)
    return predicted


@torch.no_grad()
def target_loss(model: torch.nn.Module, codec: Codec, data: Encoded, batch_size: int, device: torch.device) -> float:
    """Mean per-token loss on the targets (teacher forcing)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in by_length(data, batch_size):
        ids, mask, labels = codec.batch(data, batch, device)
        n = int((labels[:, 1:] != IGNORE_INDEX).sum())
        total += task_loss(model, codec, ids, mask, labels).item() * n
        count += n
    model.train(was_training)
    return total / max(count, 1)


def model_meta(backbone: Transformer, recipe: FinetuneRecipe, kind: str, labels: list[str]) -> dict[str, Any]:
    """What a checkpoint's weights depend on: the architecture, the head and the method's extra tensors."""
    return {"transformer": dataclasses.asdict(backbone.config), "kind": kind, "labels": labels,
            "method": dataclasses.asdict(recipe.method)}


class FinetuneTask:
    @classmethod
    def from_recipe(cls, recipe: FinetuneRecipe, env: DistEnv, run: RunDir) -> "FinetuneTask":
        return cls(recipe, env, run)

    def __init__(self, recipe: FinetuneRecipe, env: DistEnv, run: RunDir):
        self.recipe, self.env = recipe, env
        d = recipe.data
        data: TaskData = load_task_data(d.dataset, d.kind)
        backbone, self.tokenizer = load_start(recipe.start, recipe.init, recipe.seed)
        torch.manual_seed(recipe.seed)  # the head's initial weights, and LoRA's A matrices
        model = build_model(backbone, data.kind, len(data.labels))
        self.codec = Codec(self.tokenizer, data.kind, data.labels, d.max_tokens, backbone.config.block_size)
        apply_method(model, backbone, recipe.method)
        self.model_description = model_meta(backbone, recipe, data.kind, data.labels)
        self.model = wrap_ddp(model.to(env.device), env)
        self.modules = {"model": model}
        self.optimizers = {"model": make_optimizer(model, recipe.train)}
        self.train, skipped = self.codec.encode(data.training_examples(d.limit, recipe.seed), skip_long=True)
        self.validation, _ = self.codec.encode(data.splits["validation"][:VALIDATION_PAIRS]
                                               if data.kind == "seq2seq" else data.splits["validation"], False)
        self.num_examples = len(self.train.ids)
        self.total_steps = recipe.train.epochs * max(1, self.num_examples // d.batch_size)
        name = d.dataset if d.dataset in FINETUNE_DATASETS else "file"
        self.data_source = (f"{data.source}: {self.num_examples:,} training examples"
                            + (f" ({skipped:,} longer than data.max_tokens={d.max_tokens} skipped)" if skipped else ""))
        if env.is_main:
            run.path.mkdir(parents=True, exist_ok=True)
            self.tokenizer.save(run.path / "tokenizer.json")
            total = sum(p.numel() for p in model.parameters())
            trainable = trainable_parameter_count(model)
            run.update_report("finetune", {
                "task": name, "dataset": d.dataset, "kind": data.kind, "method": recipe.method.name,
                "start": recipe.start, "init": recipe.init, "trainable_parameters": trainable,
                "total_parameters": total, "trainable_fraction": trainable / total,
                "train_examples": self.num_examples, "skipped_long_examples": skipped})

    def meta(self) -> dict[str, Any]:
        return {"task": "finetune", "model": self.model_description}

    def rng_state(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state()}  # dropout draws from the global generator

    def load_rng_state(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])

    def step_kind(self, step: int) -> str:
        return "step"  # every step costs about the same: padded batches of similar size

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        t = self.recipe.train
        lr = cosine_lr(step, t.lr, t.min_lr, t.warmup_iters, self.total_steps)
        optimizer = self.optimizers["model"]
        for group in optimizer.param_groups:
            group["lr"] = lr
        ids, mask, labels = self.codec.batch(self.train, indices.tolist(), self.env.device)
        loss = task_loss(self.model, self.codec, ids, mask, labels)
        loss.backward()
        if t.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for p in self.modules["model"].parameters() if p.requires_grad],
                                           t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return {"loss": loss.item(), "lr": lr}

    def end_epoch(self, epoch: int, run: RunDir) -> dict[str, float]:
        if not self.env.is_main:
            return {}
        model, batch = unwrap(self.model), self.recipe.eval.batch_size
        if self.recipe.method.name in PARAMETER_EFFICIENT:
            save_delta(model, run.path / "adapter", {"method": dataclasses.asdict(self.recipe.method),
                                                     "start": self.recipe.start, "init": self.recipe.init})
        if self.codec.kind == "classify":
            predicted = predict_labels(model, self.codec, self.validation, batch, self.env.device)
            metrics = {"val/macro_f1": macro_f1(self.validation.targets, predicted),
                       "val/accuracy": accuracy(self.validation.targets, predicted)}
        else:
            loss = target_loss(model, self.codec, self.validation, batch, self.env.device)
            metrics = {"val/loss": loss, "val/perplexity": math.exp(loss)}
        run.update_report("validation", {k.removeprefix("val/"): v for k, v in metrics.items()} | {"epoch": epoch})
        return metrics
