"""Few-shot classification: k labelled examples per class, drawn and ordered by a seed
(`LabelledData.per_class_examples(k, seed)`), learnt five ways:

(a) frozen sentence embeddings (MiniLM) + logistic regression: `logistic_head` on `SentenceEncoder.embed`;
(b) SetFit-style (Tunstall et al. 2022): `contrastive_finetune` pulls same-class pairs together and pushes
    other-class pairs apart (cosine-similarity loss) in the encoder itself, then the same head as (a);
(c) LoRA: the finetune task on `data.per_class` examples of each label (genlab/recipes/fortunes-lora.yaml);
(d) in-context: the `in-context` protocol puts worked examples in a causal LM's prompt and scores each
    label as the zero-shot protocol does (genlab.evaluation.zeroshot);
(e) TF-IDF of word uni- and bigrams + logistic regression: `tfidf_logreg`.

benchmarks/fewshot_benchmark.py runs them all over k and seeds (docs/paradigms.md).
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from genlab.data.labelled import load_labelled_data
from genlab.errors import GenlabError
from genlab.evaluation.eval_protocol import EvalProtocol
from genlab.evaluation.sentence import SentenceEncoder
from genlab.evaluation.zeroshot import LabelScorer, Prompts, load_prompts, plurality_baseline, score_rules


def tfidf_logreg(train: list[tuple[str, str]], texts: list[str], seed: int = 0) -> list[str]:
    """(e): TF-IDF of word uni- and bigrams + logistic regression -> a label per text. min_df=1: with a
    few examples per class, a word seen once is all there is. scikit-learn is imported here, as in
    text_metrics: it is slow to import and most commands never use it."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(max_iter=2000, C=10.0, random_state=seed),
    )
    pipeline.fit([t for t, _ in train], [y for _, y in train])
    return list(pipeline.predict(texts))


def logistic_head(vectors: torch.Tensor, labels: list[str], test_vectors: torch.Tensor, seed: int = 0) -> list[str]:
    """(a), (b): logistic regression on sentence vectors (N, C) -> a label per test vector (M, C)."""
    from sklearn.linear_model import LogisticRegression

    head = LogisticRegression(max_iter=2000, C=10.0, random_state=seed)
    head.fit(vectors.numpy(), labels)
    return list(head.predict(test_vectors.numpy()))


@dataclass
class ContrastiveConfig:
    iterations: int = 20  # SetFit's num_iterations: per example, this many same-class and other-class pairs
    max_pairs: int = 320  # a CPU budget: at most this many of those pairs, drawn at random
    batch_size: int = 16  # pairs per step
    lr: float = 2e-5
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.iterations, self.max_pairs, self.batch_size) < 1 or self.lr <= 0:
            raise GenlabError("contrastive fine-tuning needs iterations, max_pairs, batch_size >= 1 and lr > 0")


def contrastive_pairs(labels: list[str], iterations: int, rng: random.Random) -> list[tuple[int, int, float]]:
    """SetFit's pair sampling: for each example, `iterations` times, one partner of its own class (target
    cosine 1; itself when it is its class's only example) and one of another class (target 0)."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    pairs = []
    for _ in range(iterations):
        for i, label in enumerate(labels):
            same = [j for j in by_label[label] if j != i] or [i]
            other = [j for j in range(len(labels)) if labels[j] != label]
            pairs.append((i, rng.choice(same), 1.0))
            if other:
                pairs.append((i, rng.choice(other), 0.0))
    return pairs


def contrastive_finetune(
    encoder: SentenceEncoder, examples: list[tuple[str, str]], config: ContrastiveConfig
) -> dict[str, float]:
    """(b): fine-tune the whole encoder in place on pairs of `examples`; -> steps, seconds, FLOPs."""
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)  # dropout
    pairs = contrastive_pairs([y for _, y in examples], config.iterations, rng)
    pairs = rng.sample(pairs, min(config.max_pairs, len(pairs)))
    optimizer = torch.optim.AdamW(encoder.backbone.parameters(), lr=config.lr)
    encoder.backbone.train()
    began = time.perf_counter()
    with FlopCounterMode(display=False) as counter:
        for start in range(0, len(pairs), config.batch_size):
            batch = pairs[start : start + config.batch_size]
            vectors = encoder.forward([examples[i][0] for i, _, _ in batch] + [examples[j][0] for _, j, _ in batch])
            u, v = vectors.split(len(batch))  # (P, C) each, unit length
            target = torch.tensor([t for _, _, t in batch])
            loss = F.mse_loss((u * v).sum(-1), target)  # sentence-transformers' CosineSimilarityLoss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    encoder.backbone.eval()
    return {
        "pairs": len(pairs),
        "steps": -(-len(pairs) // config.batch_size),
        "seconds": time.perf_counter() - began,
        "flops": float(counter.get_total_flops()),
    }


# ---- (d) in-context examples for a causal LM -------------------------------------------------------


def demonstrations(prompts: Prompts, examples: list[tuple[str, str]], encode: Any, budget: int) -> tuple[str, int]:
    """Worked examples, in the given order, as one prompt prefix of at most `budget` tokens: each example
    that would overflow it is left out. -> the prefix and how many examples it holds."""
    prefix, used = "", 0
    for text, label in examples:
        shown = prompts.query(text) + prompts.answer.format(name=prompts.labels[label][0]) + prompts.separator
        if len(encode(prefix + shown)) <= budget:
            prefix, used = prefix + shown, used + 1
    return prefix, used


def _mean_sd(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "seeds": values,
    }


def in_context(
    handle: Any,
    dataset: str = "fortunes",
    templates: str = "fortunes",
    k: int = 4,
    seeds: int = 5,
    limit: int = 0,
    query_tokens: int = 96,
) -> dict[str, Any]:
    """k-shot prompting: per seed, k examples of each class in a seeded order, as many as fit the context
    before `query_tokens` tokens kept for the test quote; each test quote scored by its labels' likelihood."""
    if min(k, seeds, query_tokens) < 1 or limit < 0:
        raise GenlabError("in-context needs k, seeds, query_tokens >= 1 and limit >= 0")
    prompts = load_prompts(templates)
    data = load_labelled_data(dataset, "classify")
    test = data.test_examples(limit)
    decoding = handle.text_decoding()
    scorer = LabelScorer(
        decoding.model.eval(), decoding.encode, prompts.for_labels(data.labels), decoding.model.config.block_size
    )
    if query_tokens >= scorer.room:
        raise GenlabError(
            f"query_tokens={query_tokens} leaves no room for examples in the model's context "
            f"({decoding.model.config.block_size} tokens)"
        )
    began = time.perf_counter()
    per_seed, in_prompt = [], []
    for seed in range(seeds):
        examples = data.per_class_examples(k, seed)
        prefix, used = demonstrations(prompts, examples, decoding.encode, scorer.room - query_tokens)
        per_seed.append(score_rules(scorer, test, data.labels, prompts, prefix))
        in_prompt.append(used)
    rules = list(per_seed[0]["macro_f1"])
    return {
        "dataset": dataset,
        "templates": prompts.source,
        "k": k,
        "examples": len(test),
        "context": decoding.model.config.block_size,
        "in_prompt": in_prompt,
        "macro_f1": {rule: _mean_sd([s["macro_f1"][rule] for s in per_seed]) for rule in rules},
        **{rule: _mean_sd([s[rule] for s in per_seed]) for rule in rules},
        "queries_cut": [s["queries_cut"] for s in per_seed],
        "plurality": plurality_baseline(data, test),
        "score_seconds": time.perf_counter() - began,
    }


PROTOCOL = EvalProtocol(
    "in-context",
    ("completions",),
    in_context,
    "k-shot prompts: worked examples in the prompt, labels scored by log-likelihood",
)
