"""The fine-tuning training: a pretrained transformer + task adaptation layer + task loss, trained by one
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

import numpy as np
import torch
import torch.nn.functional as F

from genlab.core.distributed import DistEnv, unwrap, wrap_ddp
from genlab.core.optim import adamw, cosine_lr, set_lr
from genlab.core.run import RunDir
from genlab.core.training import GlobalTorchRng
from genlab.data.labelled import LabelledData, load_labelled_data
from genlab.errors import GenlabError
from genlab.evaluation.text_metrics import accuracy, macro_f1
from genlab.evaluation.text_robustness import perturb
from genlab.io.files import atomic_write_text
from genlab.io.tokenizers import BOS, EOS, PAD, Tokenizer
from genlab.io.wordnet import synonyms_table
from genlab.models.classifier import SequenceClassifier
from genlab.models.generation import generate
from genlab.models.transformer import Transformer
from genlab.peft.lora import trainable_parameter_count
from genlab.peft.methods import PARAMETER_EFFICIENT, apply_method, save_delta
from genlab.tasks.finetune.recipe import FinetuneRecipe
from genlab.tasks.finetune.starts import load_start
from genlab.tasks.lm.process import IGNORE_INDEX

VALIDATION_PAIRS = 256  # seq2seq validation loss is measured on this many validation pairs
SAMPLE_EXAMPLES = 4  # validation examples answered in each period's sample (samples/epoch_XXXX.txt)


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
                ids.append(self.tokenizer.encode(text)[: self.max_tokens] or [self.pad_id])
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
            ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
            if self.kind == "seq2seq":
                labels[r, data.targets[i] : len(row)] = ids[r, data.targets[i] : len(row)]
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
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX
    )


def by_length(data: Encoded, batch_size: int) -> list[list[int]]:
    """Example indices in batches of similar length: little padding when evaluating."""
    order = sorted(range(len(data.ids)), key=lambda i: len(data.ids[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def predict_labels(
    model: torch.nn.Module, codec: Codec, data: Encoded, batch_size: int, device: torch.device
) -> list[int]:
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


@torch.no_grad()
def transform(model: Transformer, codec: Codec, sources: list[str], max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy target for each source. Sources of equal token length share a batch, so no padding
    (and no shifted positions) is needed."""
    prompts = [codec.source_ids(s) for s in sources]
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    outputs = [""] * len(sources)
    for length, members in sorted(groups.items()):
        room = min(max_new_tokens, codec.block_size - length)
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            idx = torch.tensor([prompts[i] for i in chunk])  # (B, length)
            new = generate(model, idx, room, temperature=0.0, stop=[codec.eos_id])[:, length:]  # (B, <= room)
            for i, row in zip(chunk, new.tolist()):
                outputs[i] = codec.tokenizer.decode(row[: row.index(codec.eos_id)] if codec.eos_id in row else row)
    return outputs


def model_meta(backbone: Transformer, recipe: FinetuneRecipe, kind: str, labels: list[str]) -> dict[str, Any]:
    """What a checkpoint's weights depend on: the architecture, the head and the method's extra tensors."""
    return {
        "transformer": dataclasses.asdict(backbone.config),
        "kind": kind,
        "labels": labels,
        "method": dataclasses.asdict(recipe.method),
    }


class FinetuneTraining(GlobalTorchRng):
    best_metric = None  # the last checkpoint is the run's model: fine-tuning keeps no "best"

    def __init__(self, recipe: FinetuneRecipe, env: DistEnv, run: RunDir):
        self.recipe, self.env = recipe, env
        d = recipe.data
        data: LabelledData = load_labelled_data(d.dataset, d.kind)
        backbone, self.tokenizer = load_start(recipe.start, recipe.init, recipe.seed)
        torch.manual_seed(recipe.seed)  # the head's initial weights, and LoRA's A matrices
        model = build_model(backbone, data.kind, len(data.labels))
        self.codec = Codec(self.tokenizer, data.kind, data.labels, d.max_tokens, backbone.config.block_size)
        apply_method(model, backbone, recipe.method)
        self.model_description = model_meta(backbone, recipe, data.kind, data.labels)
        self.model = wrap_ddp(model.to(env.device), env)
        self.modules = {"model": model}
        t = recipe.train
        self.optimizers = {"model": adamw(model, t.lr, t.betas, t.weight_decay)}
        examples = data.training_examples(d.limit, recipe.seed, d.per_class, d.subset_seed)
        self.train, skipped = self.codec.encode(examples, skip_long=True)
        self._check_noise(data.kind)
        self.train_texts = [text for text, _ in examples]  # what data.noise perturbs, afresh each step
        self.validation_examples = (
            data.splits["validation"][:VALIDATION_PAIRS] if data.kind == "seq2seq" else data.splits["validation"]
        )
        self.validation, _ = self.codec.encode(self.validation_examples, False)
        self.num_examples = len(self.train.ids)
        if self.num_examples < d.batch_size:  # found before anything is written to the run
            raise GenlabError(
                f"data.batch_size={d.batch_size} is larger than the {self.num_examples} training examples"
            )
        self.total_steps = t.epochs * (self.num_examples // d.batch_size)
        self.data_source = f"{data.source}: {self.num_examples:,} training examples" + (
            f" ({skipped:,} longer than data.max_tokens={d.max_tokens} skipped)" if skipped else ""
        )
        if env.is_main:
            self._write_start(run, model, data.kind, skipped)

    def _check_noise(self, kind: str) -> None:
        noise = self.recipe.data.noise
        if noise.kinds and kind != "classify":
            raise GenlabError("data.noise perturbs texts to classify; a seq2seq run takes none")
        if "synonym" in noise.kinds:
            synonyms_table()  # a missing WordNet is one line now, not at the first noisy step

    def _write_start(self, run: RunDir, model: torch.nn.Module, kind: str, skipped: int) -> None:
        """The tokenizer beside the run, and the report's `finetune` section: what is trained, on what."""
        recipe = self.recipe
        run.path.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(run.path / "tokenizer.json")
        total = sum(p.numel() for p in model.parameters())
        trainable = trainable_parameter_count(model)
        run.update_report(
            "finetune",
            {
                "dataset": recipe.data.dataset,
                "kind": kind,
                "method": recipe.method.name,
                "start": recipe.start,
                "init": recipe.init,
                "trainable_parameters": trainable,
                "total_parameters": total,
                "trainable_fraction": trainable / total,
                "train_examples": self.num_examples,
                "skipped_long_examples": skipped,
            },
        )

    def meta(self) -> dict[str, Any]:
        return {"task": "finetune", "model": self.model_description}

    def step_kind(self, step: int) -> str:
        return "step"  # every step costs about the same: padded batches of similar size

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        t = self.recipe.train
        lr = cosine_lr(step, t.lr, t.min_lr, t.warmup_iters, self.total_steps)
        optimizer = self.optimizers["model"]
        set_lr(optimizer, lr)
        data, rows = self.train, indices.tolist()
        if self.recipe.data.noise.kinds:
            data, rows = self.noisy_batch(rows, step), list(range(len(rows)))
        ids, mask, labels = self.codec.batch(data, rows, self.env.device)
        loss = task_loss(self.model, self.codec, ids, mask, labels)
        loss.backward()
        if t.grad_clip:
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.modules["model"].parameters() if p.requires_grad], t.grad_clip
            )
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return {"loss": loss.item(), "lr": lr}

    def noisy_batch(self, indices: list[int], step: int) -> Encoded:
        """The training examples `indices`, each perturbed with chance data.noise.prob by a generator seeded
        by (seed, step, index): the same batch after a resume and whichever rank draws the example."""
        noise = self.recipe.data.noise
        examples = []
        for i in indices:
            rng = np.random.default_rng([self.recipe.seed, step, i])
            text = self.train_texts[i]
            if rng.random() < noise.prob:
                kind = noise.kinds[rng.integers(len(noise.kinds))]
                text = perturb(text, kind, rng.uniform(0, noise.rate), rng).text
            examples.append((text, self.codec.labels[self.train.targets[i]]))
        return self.codec.encode(examples, skip_long=False)[0]

    def end_period(self, period: int, run: RunDir) -> dict[str, float]:
        if not self.env.is_main:
            return {}
        model, batch = unwrap(self.model), self.recipe.eval.batch_size
        if self.recipe.method.name in PARAMETER_EFFICIENT:
            save_delta(
                model,
                run.path / "adapter",
                {
                    "method": dataclasses.asdict(self.recipe.method),
                    "start": self.recipe.start,
                    "init": self.recipe.init,
                },
            )
        if self.codec.kind == "classify":
            predicted = predict_labels(model, self.codec, self.validation, batch, self.env.device)
            metrics = {
                "val/macro_f1": macro_f1(self.validation.targets, predicted),
                "val/accuracy": accuracy(self.validation.targets, predicted),
            }
            answers = [self.codec.labels[p] for p in predicted[:SAMPLE_EXAMPLES]]
        else:
            loss = target_loss(model, self.codec, self.validation, batch, self.env.device)
            metrics = {"val/loss": loss, "val/perplexity": math.exp(loss)}
            sources = [source for source, _ in self.validation_examples[:SAMPLE_EXAMPLES]]
            answers = transform(model, self.codec, sources, self.recipe.eval.max_new_tokens, SAMPLE_EXAMPLES)
        atomic_write_text(
            run.samples_dir / f"epoch_{period:04d}.txt",
            "".join(
                f"input:    {text}\nexpected: {expected}\nmodel:    {answer}\n\n"
                for (text, expected), answer in zip(self.validation_examples, answers)
            ),
        )
        run.update_report("validation", {k.removeprefix("val/"): v for k, v in metrics.items()} | {"epoch": period})
        return metrics
