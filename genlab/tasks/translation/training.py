"""The translation training: an encoder-decoder transformer (genlab.models.seq2seq) on verse pairs split by book.

Per step: one length-bucketed batch of the current epoch (the epoch's order is drawn from (seed, epoch) alone,
so a resumed run sees exactly the batches of an uninterrupted one), label-smoothed cross-entropy, AdamW on a
cosine schedule. Every `eval_interval` steps (a period): greedy BLEU and chrF on the first `eval.val_examples`
validation pairs, logged with the CPU seconds the training steps have taken so far — the quality/cost curve.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from genlab.core.distributed import DistEnv, unwrap, wrap_ddp
from genlab.core.muon import block_optimizer
from genlab.core.optim import cosine_lr, set_lr
from genlab.core.run import RunDir
from genlab.core.training import weights_meta
from genlab.data.parallel import Pair, load_parallel
from genlab.errors import GenlabError
from genlab.evaluation.translation import score_hypotheses
from genlab.io.files import atomic_write_text
from genlab.models.seq2seq import Seq2Seq, Seq2SeqConfig
from genlab.tasks.translation.process import (
    Codec,
    describe,
    length_buckets,
    shared_tokenizer,
    smoothed_loss,
    translate,
)
from genlab.tasks.translation.recipe import TranslationRecipe

SAMPLE_EXAMPLES = 4  # validation pairs shown in each period's sample (samples/step_XXXXXX.txt)


def model_config(recipe: TranslationRecipe, codec: Codec) -> Seq2SeqConfig:
    m = recipe.model
    return Seq2SeqConfig(
        vocab_size=codec.tokenizer.vocab_size,
        block_size=recipe.data.max_tokens + 1,  # a target plus <bos> (or <eos>)
        n_enc_layer=m.n_enc_layer,
        n_dec_layer=m.n_dec_layer,
        n_head=m.n_head,
        n_embd=m.n_embd,
        dropout=m.dropout,
        pad_id=codec.pad_id,
        bos_id=codec.bos_id,
        eos_id=codec.eos_id,
    )


def data_splits(recipe: TranslationRecipe) -> dict[str, list[Pair]]:
    d = recipe.data
    return load_parallel(d.source, d.target, d.path, d.test_books, d.validation_books)


def tokenizer_cache_key(recipe: TranslationRecipe) -> dict[str, Any] | None:
    """What the shared vocabulary depends on: both directions of one Bible pair share it; a file has none."""
    d = recipe.data
    if d.path:
        return None
    return {"versions": sorted([d.source, d.target]), "test": sorted(d.test_books), "val": sorted(d.validation_books)}


class TranslationTraining:
    best_metric = None  # the last checkpoint is the run's model

    def __init__(self, recipe: TranslationRecipe, env: DistEnv, run: RunDir):
        self.recipe, self.env = recipe, env
        d, t = recipe.data, recipe.train
        splits = data_splits(recipe)
        train = splits["train"][: d.limit or None]
        self.tokenizer = shared_tokenizer(train, d.vocab_size, tokenizer_cache_key(recipe))
        self.codec = Codec(self.tokenizer, d.max_tokens)
        self.sources, self.targets, skipped = self.codec.encode_pairs(train)
        if len(self.sources) < d.batch_size:
            raise GenlabError(f"data.batch_size={d.batch_size} is larger than the {len(self.sources)} training pairs")
        self.validation = splits["validation"][: recipe.eval.val_examples]
        self.config = model_config(recipe, self.codec)
        torch.manual_seed(recipe.seed)
        model = Seq2Seq(self.config).to(env.device)
        self.model = wrap_ddp(model, env)
        self.modules = {"model": model}
        self.optimizers = {"model": block_optimizer(model, t, ("encoder", "decoder"))}
        self.num_examples = t.eval_interval * d.batch_size  # one loop period = one validation interval
        self.steps_per_epoch = len(self.sources) // d.batch_size
        self.lengths = [len(s) + len(g) for s, g in zip(self.sources, self.targets)]
        self._epoch: tuple[int, list[list[int]]] = (-1, [])
        self.steps_done, self.cpu_seconds = 0, 0.0
        self.data_source = (
            f"{describe(d.path, d.source, d.target)}: {len(self.sources):,} training pairs"
            + (f" ({skipped:,} longer than data.max_tokens={d.max_tokens} skipped)" if skipped else "")
            + f", shared BPE vocabulary of {self.tokenizer.vocab_size}"
        )
        if env.is_main:
            self._write_start(run, splits, skipped)

    def _write_start(self, run: RunDir, splits: dict[str, list[Pair]], skipped: int) -> None:
        """The shared tokenizer beside the run, and the report's `data` section: which books, how many pairs."""
        run.path.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(run.path / "tokenizer.json")
        held_out = {name: pairs for name, pairs in splits.items() if name != "train"}
        run.update_report(
            "data",
            {
                "train_pairs": len(self.sources),
                "skipped_long_pairs": skipped,
                **{f"{name}_books": sorted({p.book for p in pairs}) for name, pairs in held_out.items()},
                **{f"{name}_pairs": len(pairs) for name, pairs in held_out.items()},
                "parameters": sum(p.numel() for p in self.modules["model"].parameters()),
            },
        )

    def meta(self) -> dict[str, Any]:
        d = self.recipe.data
        return weights_meta("translation", self.config, source=d.source, target=d.target)

    def rng_state(self) -> dict[str, Any]:
        # dropout draws from the global generator; the CPU seconds so far carry the curve across a resume
        return {"torch": torch.get_rng_state(), "cpu_seconds": self.cpu_seconds}

    def load_rng_state(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        self.cpu_seconds = state["cpu_seconds"]

    def step_kind(self, step: int) -> str:
        return "step"

    def _batch_indices(self, step: int) -> list[int]:
        """The training pairs of `step`: batch step % steps_per_epoch of epoch step // steps_per_epoch."""
        epoch, within = divmod(step, self.steps_per_epoch)
        if self._epoch[0] != epoch:
            generator = torch.Generator().manual_seed(self.recipe.seed * 1_000_003 + epoch)
            self._epoch = (epoch, length_buckets(self.lengths, self.recipe.data.batch_size, generator))
        batches = self._epoch[1]
        return batches[within % len(batches)]

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        # The loop's indices only count examples: the batch comes from the step number (length-bucketed epochs).
        start = time.process_time()
        t = self.recipe.train
        lr = cosine_lr(step, t.lr, t.min_lr, t.warmup_iters, t.max_iters)
        optimizer = self.optimizers["model"]
        set_lr(optimizer, lr)
        rows = self._batch_indices(step)
        src, tgt_in, labels = (
            x.to(self.env.device)
            for x in self.codec.batch([self.sources[i] for i in rows], [self.targets[i] for i in rows])
        )
        loss = smoothed_loss(self.model(src, tgt_in), labels, self.codec.pad_id, t.label_smoothing)
        loss.backward()
        if t.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.modules["model"].parameters(), t.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.steps_done = step + 1
        self.cpu_seconds += time.process_time() - start
        return {"loss": loss.item(), "lr": lr}

    def end_period(self, period: int, run: RunDir) -> dict[str, float]:
        if not self.env.is_main:
            return {}
        e = self.recipe.eval
        sources = [p.source for p in self.validation]
        references = [p.target for p in self.validation]
        hypotheses = translate(unwrap(self.model), self.codec, sources, 1, e.max_new_tokens, e.batch_size)
        scores = score_hypotheses(hypotheses, references)
        shown = "".join(
            f"source:    {s}\noutput:    {h}\nreference: {r}\n\n"
            for s, h, r in list(zip(sources, hypotheses, references))[:SAMPLE_EXAMPLES]
        )
        atomic_write_text(run.samples_dir / f"step_{self.steps_done:06d}.txt", shown)
        minutes = self.cpu_seconds / 60
        run.update_report(
            "validation",
            {
                "bleu": scores["bleu"],
                "chrf": scores["chrf"],
                "signature": scores["signature"],
                "pairs": len(sources),
                "step": self.steps_done,
                "train_cpu_minutes": minutes,
            },
        )
        return {"val/bleu": scores["bleu"], "val/chrf": scores["chrf"], "train_cpu_minutes": minutes}
