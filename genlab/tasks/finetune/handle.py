"""A fine-tuning run opened for use: its model and codec, test-split scoring, answers to prompts.

A full or freeze run is loaded from its last checkpoint. A lora or adapter run is loaded the way it
would be shipped: its start model, rebuilt from the recipe, plus the small RUN/adapter/ delta, which
refuses to load when that start is no longer the base it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genlab.core.checkpoint import load_weights, open_run_checkpoint
from genlab.core.recipe import from_dict
from genlab.core.run import CostMeter, RunDir
from genlab.data.labelled import load_labelled_data
from genlab.errors import GenlabError
from genlab.evaluation.text_metrics import accuracy, bleu, chrf, macro_f1
from genlab.interop.onnx import ExportGraph, token_logits_graph
from genlab.io.files import atomic_write, atomic_write_text
from genlab.io.tokenizers import load_tokenizer
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.peft.lora import merge_lora
from genlab.peft.methods import PARAMETER_EFFICIENT, apply_method, load_delta
from genlab.tasks.contract import RunHandle, TextDecoding
from genlab.tasks.finetune.recipe import FinetuneRecipe
from genlab.tasks.finetune.starts import load_start
from genlab.tasks.finetune.training import Codec, Encoded, build_model, predict_labels, transform

CPU = torch.device("cpu")
SHOWN_EXAMPLES = 5  # test examples copied into report.json, to read beside the scores


def load_finetuned(run: RunDir, recipe: FinetuneRecipe) -> tuple[torch.nn.Module, Codec]:
    """The fine-tuned model (eval mode, CPU) and the codec that feeds it."""
    folder, meta = open_run_checkpoint(run, "last", "finetune")
    described = meta["model"]
    if recipe.method.name in PARAMETER_EFFICIENT:
        backbone, tokenizer = load_start(recipe.start, recipe.init, recipe.seed)
    else:
        backbone = Transformer(from_dict(TransformerConfig, described["transformer"]))
        tokenizer = load_tokenizer(run.path / "tokenizer.json")
    model = build_model(backbone, described["kind"], len(described["labels"]))
    apply_method(model, backbone, recipe.method)
    if recipe.method.name in PARAMETER_EFFICIENT:
        load_delta(model, run.path / "adapter")
        merge_lora(backbone)  # serving: fold B A into W, so LoRA costs nothing per token (no-op for adapters)
    else:
        load_weights(folder, {"model": model}, meta)
    codec = Codec(tokenizer, described["kind"], described["labels"], recipe.data.max_tokens, backbone.config.block_size)
    return model.eval(), codec


def tfidf_baseline(train: list[tuple[str, str]], test: list[tuple[str, str]], seed: int) -> dict[str, Any]:
    """TF-IDF of word uni- and bigrams + logistic regression, on the same split as the model."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        LogisticRegression(max_iter=2000, C=10.0, random_state=seed),
    )
    pipeline.fit([t for t, _ in train], [label for _, label in train])
    predicted = pipeline.predict([t for t, _ in test])
    truth = [label for _, label in test]
    return {
        "name": "tf-idf + logistic regression",
        "macro_f1": macro_f1(truth, predicted),
        "accuracy": accuracy(truth, predicted),
    }


def confusion_image(truth: list[int], predicted: list[int], labels: list[str], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    figure = Figure(figsize=(7.5, 6.5))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ConfusionMatrixDisplay.from_predictions(
        truth,
        predicted,
        labels=list(range(len(labels))),
        display_labels=labels,
        ax=ax,
        colorbar=False,
        xticks_rotation=60,
        cmap="Blues",
    )
    ax.set_title("test split: true label (rows) vs predicted (columns)")
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))


@dataclass
class LabelScores:
    """A classifier's answer: every label with its probability, likeliest first."""

    scores: list[tuple[str, float]]
    tokens: int = 0  # tokens of the text the model read (after truncation to its max_tokens)

    @property
    def label(self) -> str:
        return self.scores[0][0]

    def __str__(self) -> str:
        return ", ".join(f"{label} {p:.2f}" for label, p in self.scores[:3])


class FinetuneRun(RunHandle):
    eval_section = "test"

    def __init__(self, run: RunDir, recipe: FinetuneRecipe, checkpoint: str = "last"):
        if checkpoint != "last":
            raise GenlabError("fine-tuning runs keep their last checkpoint only: drop --checkpoint best")
        super().__init__(run, recipe, checkpoint)
        self.model, self.codec = load_finetuned(run, recipe)

    @property
    def kind(self) -> str:
        return self.codec.kind  # classify | seq2seq

    @property
    def endpoint(self) -> str:
        return "completions" if self.kind == "seq2seq" else "classifications"

    @property
    def class_names(self) -> list[str]:
        return list(self.codec.labels) if self.kind == "classify" else []

    def text_decoding(self) -> TextDecoding:
        if self.kind != "seq2seq":
            raise GenlabError(f"{self.path} is a classifier: it labels texts, it does not complete them")
        codec = self.codec
        return TextDecoding(self.model, codec.tokenizer, codec.source_ids, frozenset({codec.eos_id}))

    def export_graph(self) -> ExportGraph:
        """seq2seq: the decoder as ids -> logits (source, <bos>, then the target so far); classify: ids and
        attention mask -> label scores. The run's tokenizer (RUN/tokenizer.json, or its start's) makes the ids."""
        codec = self.codec
        if codec.kind == "seq2seq":
            return token_logits_graph(
                self.model,
                f"the source's tokens, the separator {codec.sep_id}, then the "
                f"target so far (greedy decoding stops at {codec.eos_id})",
            )

        def example(batch: int) -> dict[str, torch.Tensor]:  # right-padded rows of different lengths
            width = min(codec.max_tokens, 4 + batch)
            ids = torch.randint(
                0, self.model.backbone.config.vocab_size, (batch, width), generator=torch.Generator().manual_seed(batch)
            )
            lengths = width - torch.arange(batch) % width  # width, width - 1, ..., 1, width, ...
            mask = (torch.arange(width) < lengths[:, None]).long()  # (B, width)
            return {"input_ids": ids.masked_fill(mask == 0, codec.pad_id), "attention_mask": mask}

        notes = {
            "input_ids": f"tokens, right-padded with {codec.pad_id}",
            "attention_mask": "1 on real tokens, 0 on padding",
            "logits": f"scores of the labels {', '.join(codec.labels)} (softmax for probabilities)",
        }
        sequence = ("sequence", codec.max_tokens)
        return ExportGraph(
            self.model,
            example,
            "logits",
            notes=notes,
            dynamic={"input_ids": {1: sequence}, "attention_mask": {1: sequence}},
        )

    def generate(self, prompt: str | None = None, max_tokens: int = 256) -> str | LabelScores:
        """seq2seq: the target for the source `prompt` (greedy, at most max_tokens); classify: the labels
        of the text `prompt` with their probabilities."""
        if prompt is None:
            raise GenlabError("a fine-tuned run needs a prompt (--prompt TEXT: the source, or the text to classify)")
        if self.kind == "seq2seq":
            return transform(self.model, self.codec, [prompt], max_tokens, 1)[0]
        return self.classify([prompt])[0]

    def classify(self, texts: list[str]) -> list[LabelScores]:
        codec = self.codec
        if self.kind != "classify":
            raise GenlabError(f"{self.path} is a seq2seq run, not a classifier")
        if not texts or any(not t.strip() for t in texts):
            raise GenlabError("the prompt is empty: pass --prompt TEXT")
        encoded = Encoded([codec.tokenizer.encode(t)[: codec.max_tokens] for t in texts], [0] * len(texts))
        ids, mask, _ = codec.batch(encoded, list(range(len(texts))), CPU)
        with torch.no_grad():
            probs = self.model(ids, mask).softmax(-1)  # (B, num_labels)
        return [
            LabelScores([(codec.labels[i], float(row[i])) for i in row.argsort(descending=True).tolist()], len(ids))
            for row, ids in zip(probs, encoded.ids)
        ]

    def evaluate(self) -> dict[str, Any]:
        """Score the test split (macro-F1/accuracy or BLEU/chrF, next to a baseline); report.json `test`."""
        meter = CostMeter()
        data = load_labelled_data(self.recipe.data.dataset, self.recipe.data.kind)
        test = data.test_examples(self.recipe.data.eval_limit)
        score = self._score_labels if self.codec.kind == "classify" else self._score_outputs
        metrics, shown = score(data, test)
        metrics |= {"examples": len(test), "shown": shown, "eval_seconds": meter.snapshot()["wall_seconds"]}
        self.run.update_report(self.eval_section, metrics)
        return metrics

    def _score_labels(self, data: Any, test: list[tuple[str, str]]) -> tuple[dict[str, Any], list[dict[str, str]]]:
        """Macro-F1 and accuracy against a TF-IDF baseline; the confusion matrix as a picture."""
        recipe, codec = self.recipe, self.codec
        encoded, _ = codec.encode(test, skip_long=False)
        predicted = predict_labels(self.model, codec, encoded, recipe.eval.batch_size, CPU)
        train = data.training_examples(recipe.data.limit, recipe.seed, recipe.data.per_class, recipe.data.subset_seed)
        metrics = {
            "metric": "macro_f1",
            "macro_f1": macro_f1(encoded.targets, predicted),
            "accuracy": accuracy(encoded.targets, predicted),
            "baseline": tfidf_baseline(train, test, recipe.seed),
        }
        confusion_image(encoded.targets, predicted, codec.labels, self.run.path / "confusion_matrix.png")
        shown = [
            {"text": t, "label": label, "predicted": codec.labels[p]}
            for (t, label), p in zip(test[:SHOWN_EXAMPLES], predicted)
        ]
        return metrics, shown

    def _score_outputs(self, data: Any, test: list[tuple[str, str]]) -> tuple[dict[str, Any], list[dict[str, str]]]:
        """BLEU and chrF (sacrebleu) against copying the source; every output in test_outputs.jsonl."""
        sources, references = [s for s, _ in test], [t for _, t in test]
        hypotheses = transform(
            self.model, self.codec, sources, self.recipe.eval.max_new_tokens, self.recipe.eval.batch_size
        )
        b, c = bleu(hypotheses, references), chrf(hypotheses, references)
        metrics = {
            "metric": "bleu",
            "bleu": b["score"],
            "chrf": c["score"],
            "signature": {"bleu": b["signature"], "chrf": c["signature"]},
            "baseline": {
                "name": "copy the source",
                "bleu": bleu(sources, references)["score"],
                "chrf": chrf(sources, references)["score"],
            },
        }
        rows = [{"source": s, "output": h, "reference": r} for s, h, r in zip(sources, hypotheses, references)]
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        atomic_write_text(self.run.path / "test_outputs.jsonl", text)
        return metrics, rows[:SHOWN_EXAMPLES]
