"""The chat training: supervised fine-tuning of a small GPT, trained from scratch, on conversations.

The conversations (genlab.data.chat) are rendered by the chat template (genlab.io.chat_template) and
tokenized once, with a byte-level BPE trained on them plus the chat markers as special tokens. Each step
collates the trainer's indices into a right-padded batch; the loss covers the assistant's tokens only
(its content and its end-of-turn marker), so the model learns to answer, and to stop, but not to imitate
the user. After every epoch: the validation loss on the same kind of tokens, a few answers to validation
prompts in samples/, and a Hugging Face export (RUN/model/, with the chat template in its tokenizer).
"""

from __future__ import annotations

import math
import random
from typing import Any

import torch

from genlab.core.distributed import DistEnv, unwrap, wrap_ddp
from genlab.core.muon import block_optimizer
from genlab.core.optim import cosine_lr, set_lr
from genlab.core.run import RunDir
from genlab.core.training import GlobalTorchRng, weights_meta
from genlab.data.chat import KINDS, Exchange, load_exchanges, with_context
from genlab.errors import GenlabError
from genlab.interop.hf import export_model
from genlab.io.chat_template import add_chat_tokens, export_chat_template
from genlab.io.files import atomic_write_text
from genlab.io.tokenizers import PAD, BPETokenizer, build_tokenizer, load_tokenizer
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.chat.process import (
    IGNORE_INDEX,
    answer_all,
    assistant_loss,
    batch,
    encode_conversation,
    prompt_ids,
    stop_ids,
)
from genlab.tasks.chat.recipe import ChatRecipe

VALIDATION_CONVERSATIONS = 256  # validation loss is measured on this many conversations
SAMPLE_CONVERSATIONS = 6  # validation prompts answered in each epoch's sample
TOKENIZER_TEXTS = 3000  # training conversations per kind that the BPE is trained on (whatever the counts)


def model_config(recipe: ChatRecipe, vocab_size: int) -> TransformerConfig:
    """GPT-2's layout (so every epoch exports to Hugging Face)."""
    m = recipe.model
    return TransformerConfig(
        vocab_size=vocab_size,
        block_size=recipe.data.block_size,
        **m.sizes(),
        activation="gelu_new",
    )


def choose(recipe: ChatRecipe, exchanges: dict[str, dict[str, list[Exchange]]], split: str) -> list[Exchange]:
    """The recipe's conversations of `split`: each kind's count (data.file: all, or a seeded `limit`), each
    given its context (a system prompt, an earlier exchange) by a generator seeded by the recipe."""
    d = recipe.data
    rng = random.Random(recipe.seed)
    chosen = []
    for kind, splits in exchanges.items():
        pool = splits[split]
        count = getattr(d, kind, 0) if not d.file else (d.limit or len(pool))
        if split != "train":
            count = min(count, VALIDATION_CONVERSATIONS // len(exchanges) + 1) if count else 0
        if not pool or not count:
            continue
        picked = rng.sample(pool, count) if count <= len(pool) else [pool[i % len(pool)] for i in range(count)]
        chosen += picked
    kinds = {ex.kind for ex in chosen}  # an earlier exchange is of a kind the run trains on (single-task runs)
    everything = [ex for kind, splits in exchanges.items() if kind in kinds for ex in splits[split]]
    rng.shuffle(chosen)
    return [with_context(ex, everything, rng, d.system, d.multi_turn) for ex in chosen]


def tokenizer_texts(exchanges: dict[str, dict[str, list[Exchange]]]) -> list[str]:
    """The texts the BPE learns from: the same for every mixture of kinds, so single-task runs share it."""
    texts = []
    for splits in exchanges.values():
        for ex in splits["train"][:TOKENIZER_TEXTS]:
            texts += [m["content"] for m in ex.messages]
    return texts


class ChatTraining(GlobalTorchRng):
    best_metric = "val/loss"

    def __init__(self, recipe: ChatRecipe, env: DistEnv, run: RunDir):
        self.recipe, self.env = recipe, env
        d = recipe.data
        if not d.file and not any(getattr(d, kind) for kind in KINDS):
            raise GenlabError("every data count is 0: nothing to train on (set data.translate, ... or data.file)")
        exchanges = load_exchanges(d.file, recipe.seed)
        self.tokenizer = self._tokenizer(run, exchanges)
        self.config = model_config(recipe, self.tokenizer.vocab_size)
        self.stops = stop_ids(self.tokenizer)
        self.pad_id = self.tokenizer.token_id(PAD)
        chosen = choose(recipe, exchanges, "train")
        self.train, skipped = self._encode(chosen)
        self.validation_exchanges = choose(recipe, exchanges, "validation")
        self.validation, _ = self._encode(self.validation_exchanges)
        self.num_examples = len(self.train)
        if self.num_examples < d.batch_size or not self.validation:
            raise GenlabError(
                f"{self.num_examples} training / {len(self.validation)} validation conversations fit "
                f"data.block_size={d.block_size}: need at least data.batch_size={d.batch_size} and 1"
            )
        torch.manual_seed(recipe.seed)
        model = Transformer(self.config).to(env.device)
        self.model, self.modules = wrap_ddp(model, env), {"model": model}
        t = recipe.train
        self.optimizers = {"model": block_optimizer(model, t)}
        self.total_steps = t.epochs * (self.num_examples // d.batch_size)
        kinds = ", ".join(sorted({ex.kind for ex in chosen}))
        self.data_source = f"conversations ({kinds}): {self.num_examples:,} training" + (
            f" ({skipped:,} longer than data.block_size={d.block_size} skipped)" if skipped else ""
        )
        if env.is_main:  # every check has passed: now the run may be written
            run.path.mkdir(parents=True, exist_ok=True)
            self.tokenizer.save(run.path / "tokenizer.json")
            export_chat_template(run.path)

    def _tokenizer(self, run: RunDir, exchanges: dict[str, dict[str, list[Exchange]]]) -> BPETokenizer:
        """The run's tokenizer when it continues, else a BPE trained on the conversations + the chat markers."""
        path = run.path / "tokenizer.json"
        if run.exists() and path.is_file():
            return load_tokenizer(path)
        return add_chat_tokens(build_tokenizer("bpe", tokenizer_texts(exchanges), self.recipe.data.vocab_size))

    def _encode(self, exchanges: list[Exchange]) -> tuple[list[tuple[list[int], list[int]]], int]:
        """Tokenized conversations that fit the context, and how many did not."""
        rows = [encode_conversation(self.tokenizer, ex.messages) for ex in exchanges]
        kept = [row for row in rows if len(row[0]) <= self.recipe.data.block_size]
        return kept, len(rows) - len(kept)

    def meta(self) -> dict[str, Any]:
        return weights_meta("chat", self.config)

    def step_kind(self, step: int) -> str:
        return "step"

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        t = self.recipe.train
        lr = cosine_lr(step, t.lr, t.min_lr, t.warmup_iters, self.total_steps)
        optimizer = self.optimizers["model"]
        set_lr(optimizer, lr)
        ids, labels = batch([self.train[i] for i in indices.tolist()], self.pad_id)
        loss = assistant_loss(self.model, ids.to(self.env.device), labels.to(self.env.device))
        loss.backward()
        if t.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.modules["model"].parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return {"loss": loss.item(), "lr": lr}

    @torch.no_grad()
    def validation_loss(self, model: Transformer) -> float:
        """Mean loss per assistant token over the validation conversations."""
        model.eval()
        total, count = 0.0, 0
        size = self.recipe.data.batch_size
        for start in range(0, len(self.validation), size):
            ids, labels = batch(self.validation[start : start + size], self.pad_id)
            n = int((labels[:, 1:] != IGNORE_INDEX).sum())
            total += assistant_loss(model, ids.to(self.env.device), labels.to(self.env.device)).item() * n
            count += n
        model.train()
        return total / max(count, 1)

    def _sample(self, model: Transformer) -> str:
        """Answers (the run's decoding) to the first validation conversations, beside the reference answers."""
        exchanges = self.validation_exchanges[:SAMPLE_CONVERSATIONS]
        block = self.config.block_size
        prompts = [prompt_ids(self.tokenizer, ex.messages[:-1], block) for ex in exchanges]
        answers = answer_all(
            model.eval(), prompts, self.recipe.eval.max_new_tokens, self.stops, len(prompts), self.recipe.decoding
        )
        model.train()
        return "".join(
            f"[{ex.kind}] user: {ex.messages[-2]['content']}\nexpected:  {ex.reference}\n"
            f"assistant: {self.tokenizer.decode(seq.tokens)}\n\n"
            for ex, seq in zip(exchanges, answers)
        )

    def end_period(self, period: int, run: RunDir) -> dict[str, float]:
        if not self.env.is_main:
            return {}
        model = unwrap(self.model)
        loss = self.validation_loss(model)
        atomic_write_text(run.samples_dir / f"epoch_{period:04d}.txt", self._sample(model))
        export_chat_template(export_model(model, self.tokenizer, run.path / "model"))
        run.update_report("validation", {"loss": loss, "perplexity": math.exp(loss), "epoch": period})
        return {"val/loss": loss, "val/perplexity": math.exp(loss)}
