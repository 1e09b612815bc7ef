"""What the CLI does with a fine-tuning run: load it, score its test split, answer one prompt.

A full or freeze run is loaded from its last checkpoint. A lora or adapter run is loaded the way it
would be shipped: its start model, rebuilt from the recipe, plus the small RUN/adapter/ delta, which
refuses to load when that start is no longer the base it was trained on.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from genlab.config import FinetuneRecipe, from_dict
from genlab.data.finetune import load_task_data
from genlab.errors import GenlabError
from genlab.evaluation.text_metrics import accuracy, bleu, chrf, macro_f1
from genlab.generation import generate
from genlab.models.delta import PARAMETER_EFFICIENT, apply_method, load_delta
from genlab.models.lora import merge_lora
from genlab.models.starts import load_start
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tokenizers import load_tokenizer
from genlab.tracking import CostMeter, RunDir, atomic_write_text
from genlab.training.checkpoint import load_weights, open_run_checkpoint
from genlab.training.finetune import Codec, Encoded, build_model, predict_labels

CPU = torch.device("cpu")
SHOWN_EXAMPLES = 5  # test examples copied into report.json, to read beside the scores


def load_finetuned(run_path: Path) -> tuple[torch.nn.Module, Codec, FinetuneRecipe]:
    """The fine-tuned model (eval mode, CPU), the codec that feeds it, and its recipe."""
    run, folder, meta = open_run_checkpoint(Path(run_path), "last", "finetune")
    recipe = from_dict(FinetuneRecipe, run.read_config())
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
    codec = Codec(tokenizer, described["kind"], described["labels"], recipe.data.max_tokens,
                  backbone.config.block_size)
    return model.eval(), codec, recipe


@torch.no_grad()
def transform(model: Transformer, codec: Codec, sources: list[str], max_new_tokens: int,
              batch_size: int) -> list[str]:
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
            chunk = members[start:start + batch_size]
            idx = torch.tensor([prompts[i] for i in chunk])  # (B, length)
            new = generate(model, idx, room, temperature=0.0, stop=[codec.eos_id])[:, length:]  # (B, <= room)
            for i, row in zip(chunk, new.tolist()):
                outputs[i] = codec.tokenizer.decode(row[:row.index(codec.eos_id)] if codec.eos_id in row else row)
    return outputs


def tfidf_baseline(train: list[tuple[str, str]], test: list[tuple[str, str]], seed: int) -> dict[str, Any]:
    """TF-IDF of word uni- and bigrams + logistic regression, on the same split as the model."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                             LogisticRegression(max_iter=2000, C=10.0, random_state=seed))
    pipeline.fit([t for t, _ in train], [label for _, label in train])
    predicted = pipeline.predict([t for t, _ in test])
    truth = [label for _, label in test]
    return {"name": "tf-idf + logistic regression", "macro_f1": macro_f1(truth, predicted),
            "accuracy": accuracy(truth, predicted)}


def confusion_image(truth: list[int], predicted: list[int], labels: list[str], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    figure = Figure(figsize=(7.5, 6.5))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ConfusionMatrixDisplay.from_predictions(truth, predicted, labels=list(range(len(labels))),
                                            display_labels=labels, ax=ax, colorbar=False,
                                            xticks_rotation=60, cmap="Blues")
    ax.set_title("test split: true label (rows) vs predicted (columns)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def evaluate_finetuned(run_path: Path) -> dict[str, Any]:
    """Score the test split (macro-F1/accuracy or BLEU/chrF, next to a baseline); stored in report.json."""
    model, codec, recipe = load_finetuned(run_path)
    meter = CostMeter()
    data = load_task_data(recipe.data.dataset, recipe.data.kind)
    test = data.test_examples(recipe.data.eval_limit)
    run, batch = RunDir(run_path), recipe.eval.batch_size
    if codec.kind == "classify":
        encoded, _ = codec.encode(test, skip_long=False)
        predicted = predict_labels(model, codec, encoded, batch, CPU)
        train = data.training_examples(recipe.data.limit, recipe.seed)
        metrics = {"metric": "macro_f1", "macro_f1": macro_f1(encoded.targets, predicted),
                   "accuracy": accuracy(encoded.targets, predicted),
                   "baseline": tfidf_baseline(train, test, recipe.seed)}
        confusion_image(encoded.targets, predicted, codec.labels, run.path / "confusion_matrix.png")
        shown = [{"text": t, "label": label, "predicted": codec.labels[p]}
                 for (t, label), p in zip(test[:SHOWN_EXAMPLES], predicted)]
    else:
        sources, references = [s for s, _ in test], [t for _, t in test]
        hypotheses = transform(model, codec, sources, recipe.eval.max_new_tokens, batch)
        b, c = bleu(hypotheses, references), chrf(hypotheses, references)
        metrics = {"metric": "bleu", "bleu": b["score"], "chrf": c["score"],
                   "signature": {"bleu": b["signature"], "chrf": c["signature"]},
                   "baseline": {"name": "copy the source", "bleu": bleu(sources, references)["score"],
                                "chrf": chrf(sources, references)["score"]}}
        atomic_write_text(run.path / "test_outputs.jsonl", "".join(
            json.dumps({"source": s, "output": h, "reference": r}, ensure_ascii=False) + "\n"
            for s, h, r in zip(sources, hypotheses, references)))
        shown = [{"source": s, "output": h, "reference": r}
                 for s, h, r in list(zip(sources, hypotheses, references))[:SHOWN_EXAMPLES]]
    metrics |= {"examples": len(test), "shown": shown, "eval_seconds": meter.snapshot()["wall_seconds"]}
    run.update_report("test", metrics)
    return metrics


def answer(run_path: Path, prompt: str, max_new_tokens: int) -> str:
    """`genlab generate RUN --prompt`: the target for a source (seq2seq) or the label ranking (classify)."""
    model, codec, _ = load_finetuned(run_path)
    if codec.kind == "seq2seq":
        return transform(model, codec, [prompt], max_new_tokens, 1)[0]
    if not prompt.strip():
        raise GenlabError("the prompt is empty: pass --prompt TEXT")
    encoded = Encoded([codec.tokenizer.encode(prompt)[:codec.max_tokens]], [0])
    ids, mask, _ = codec.batch(encoded, [0], CPU)
    with torch.no_grad():
        probs = model(ids, mask).softmax(-1)[0]
    top = probs.argsort(descending=True)[:3].tolist()
    return ", ".join(f"{codec.labels[i]} {probs[i]:.2f}" for i in top)
