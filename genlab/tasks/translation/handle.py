"""A translation run opened for use: translate a text (greedy or beam search), score the held-out books."""

from __future__ import annotations

import json
from typing import Any

import torch

from genlab.core.checkpoint import load_network
from genlab.core.run import CostMeter, RunDir
from genlab.errors import GenlabError
from genlab.evaluation.translation import copy_source, score_hypotheses, score_translator
from genlab.interop.onnx import ExportGraph
from genlab.io.files import atomic_write_text
from genlab.io.tokenizers import load_tokenizer
from genlab.io.validate import check_int
from genlab.models.seq2seq import Seq2Seq, Seq2SeqConfig, TranslationLogits
from genlab.tasks.contract import RunHandle
from genlab.tasks.translation.process import Codec, translate
from genlab.tasks.translation.recipe import TranslationRecipe
from genlab.tasks.translation.training import data_splits

SHOWN_EXAMPLES = 5  # test pairs copied into report.json, to read beside the scores
MAX_BEAM = 32


class TranslationRun(RunHandle):
    eval_section = "test"
    endpoint = "translations"

    def __init__(self, run: RunDir, recipe: TranslationRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.model: Seq2Seq = load_network(run, checkpoint, "translation", Seq2SeqConfig, Seq2Seq, "model").network
        self.codec = Codec(load_tokenizer(run.path / "tokenizer.json"), recipe.data.max_tokens)
        if self.codec.tokenizer.vocab_size != self.model.config.vocab_size:
            raise GenlabError(f"{run.path / 'tokenizer.json'} does not belong to this run's model (vocabulary size)")

    @property
    def class_names(self) -> list[str]:
        return []  # a translator has no labels

    def translate(self, texts: list[str], beam: int = 4, max_tokens: int = 160) -> list[str]:
        """Each text's translation: greedy with beam 1, else beam search of that width."""
        check_int("beam", beam, 1, MAX_BEAM)
        check_int("max_tokens", max_tokens, 1, 4096)  # decoding stops at the model's block anyway
        if not texts or not all(isinstance(t, str) for t in texts):
            raise GenlabError("give at least one text to translate (--text TEXT)")
        e = self.recipe.eval
        return translate(self.model, self.codec, texts, beam, max_tokens, e.batch_size, e.length_penalty)

    def generate(self, text: str | None = None, beam: int = 4, max_tokens: int = 160) -> str:
        """The translation of `text` (beam search of width `beam`; 1 = greedy), at most max_tokens tokens."""
        if text is None:
            raise GenlabError("a translation run needs a text: --text TEXT")
        return self.translate([text], beam, max_tokens)[0]

    def evaluate(self, beam: int = 4) -> dict[str, Any]:
        """BLEU and chrF (sacreBLEU, with signatures) on the test books: beam search of width `beam`, greedy,
        and copying the source; report.json `test`, every output in RUN/test_outputs.jsonl."""
        meter = CostMeter()
        e = self.recipe.eval
        test = data_splits(self.recipe)["test"][: e.limit or None]
        sources, references = [p.source for p in test], [p.target for p in test]
        greedy = score_translator(lambda s: self.translate(s, 1, e.max_new_tokens), sources, references)
        searched = score_translator(lambda s: self.translate(s, beam, e.max_new_tokens), sources, references)
        baseline = score_hypotheses(copy_source(sources), references)
        metrics = {
            "metric": "bleu",
            "bleu": searched["bleu"],
            "chrf": searched["chrf"],
            "beam": beam,
            "signature": searched["signature"],
            "greedy": {"bleu": greedy["bleu"], "chrf": greedy["chrf"]},
            "baseline": {"name": "copy the source", "bleu": baseline["bleu"], "chrf": baseline["chrf"]},
            "books": sorted({p.book for p in test}),
            "examples": len(test),
        }
        rows = [
            {"ref": p.ref, "source": p.source, "beam": b, "greedy": g, "reference": p.target}
            for p, b, g in zip(test, searched["hypotheses"], greedy["hypotheses"])
        ]
        atomic_write_text(
            self.run.path / "test_outputs.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        )
        metrics |= {"shown": rows[:SHOWN_EXAMPLES], "eval_seconds": meter.snapshot()["wall_seconds"]}
        self.run.update_report(self.eval_section, metrics)
        return metrics

    def export_graph(self) -> ExportGraph:
        """(source ids, <bos> + target so far) -> next-token logits over the shared vocabulary."""
        cfg = self.model.config

        def example(batch: int) -> dict[str, torch.Tensor]:  # other lengths per batch size: the axes are dynamic
            draw = torch.Generator().manual_seed(batch)
            source = torch.randint(4, cfg.vocab_size, (batch, min(cfg.block_size, 3 + batch)), generator=draw)
            target = torch.randint(4, cfg.vocab_size, (batch, min(cfg.block_size, 2 + batch)), generator=draw)
            return {"source_ids": source, "target_ids": target}

        return ExportGraph(
            TranslationLogits(self.model),
            example,
            "logits",
            dynamic={"source_ids": {1: ("source", cfg.block_size)}, "target_ids": {1: ("target", cfg.block_size)}},
            output_axes={1: "target"},
            notes={
                "source_ids": f"the source's tokens (RUN/tokenizer.json), right-padded with {cfg.pad_id}",
                "target_ids": f"{cfg.bos_id} (<bos>) then the translation so far",
                "logits": f"next-token scores over the {cfg.vocab_size} tokens; decoding stops at {cfg.eos_id} (<eos>)",
            },
        )
