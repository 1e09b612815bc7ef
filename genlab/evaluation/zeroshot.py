"""Zero-shot classification: no training example of the task is seen.

(a) `embedding_zero_shot`: a sentence encoder (MiniLM) puts a text and each label's description in one
    space; the nearest description is the prediction.
(b) the `zero-shot` protocol, `genlab eval RUN --protocol zero-shot` for a run that completes text (a causal
    LM): each label is scored by the log-likelihood of its answer after the prompt, as lm-evaluation-harness
    scores multiple choice: `acc` takes the largest sum of token log-probabilities, `acc_norm` the largest
    sum per character of the answer (so long answers are not punished for their length). Both also
    with contextual calibration (Zhao et al. 2021, "Calibrate Before Use"): the label distribution the model
    gives to content-free inputs ("N/A", "", "[MASK]") measures its bias towards some answers, and each
    prediction divides it out.

Prompts and label descriptions are data: a YAML file (genlab/evaluation/prompts/<name>.yaml, or a path).
The plurality-class baseline (always answer the commonest training label) is reported beside every score.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genlab.data.labelled import LabelledData, load_labelled_data
from genlab.errors import GenlabError
from genlab.evaluation.eval_protocol import EvalProtocol
from genlab.evaluation.sentence import SentenceEncoder
from genlab.evaluation.text_metrics import accuracy, macro_f1
from genlab.io.files import read_yaml
from genlab.models.transformer import KVBuffer

PROMPTS_DIR = Path(__file__).parent / "prompts"


@dataclass(frozen=True)
class Prompts:
    labels: dict[str, tuple[str, str]]  # dataset label -> (answer name, description)
    prompt: str  # "... {text} ..."
    answer: str  # "... {name} ..."
    separator: str  # between in-context examples
    content_free: tuple[str, ...]
    source: str  # the file, for messages and the report

    def __post_init__(self) -> None:
        for field_name, key in (("prompt", "{text}"), ("answer", "{name}")):
            if key not in getattr(self, field_name):
                raise GenlabError(f"{self.source}: '{field_name}' must contain {key}")
        if not self.content_free:
            raise GenlabError(f"{self.source}: 'content_free' needs at least one input")

    def for_labels(self, labels: list[str]) -> list[str]:
        """The answer strings of `labels` (a dataset's classes, in id order); each label must be described."""
        missing = [label for label in labels if label not in self.labels]
        if missing:
            raise GenlabError(f"{self.source} describes no label {missing[0]!r} (it has: {', '.join(self.labels)})")
        return [self.answer.format(name=self.labels[label][0]) for label in labels]

    def query(self, text: str) -> str:
        return self.prompt.format(text=text)


def load_prompts(name: str) -> Prompts:
    """A shipped prompt set by name (genlab/evaluation/prompts/NAME.yaml) or a YAML file of the same shape."""
    path = PROMPTS_DIR / f"{name}.yaml" if "/" not in name and not name.endswith(".yaml") else Path(name)
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml")))
        raise GenlabError(f"unknown templates {name!r}: neither a shipped prompt set ({shipped}) nor a YAML file")
    tree = read_yaml(path, "prompt set")
    keys = {"labels", "prompt", "answer", "separator", "content_free"}
    if not isinstance(tree, dict) or set(tree) != keys:
        raise GenlabError(f"{path}: a prompt set has exactly the keys {', '.join(sorted(keys))}")
    labels = {}
    for label, entry in (tree["labels"] or {}).items():
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "description")):
            raise GenlabError(f"{path}: label {label!r} needs a string 'name' and 'description'")
        labels[str(label)] = (entry["name"], entry["description"])
    return Prompts(
        labels,
        str(tree["prompt"]),
        str(tree["answer"]),
        str(tree["separator"]),
        tuple(str(t) for t in tree["content_free"] or ()),
        str(path),
    )


def plurality_baseline(data: LabelledData, test: list[tuple[str, str]]) -> dict[str, Any]:
    """Answer the commonest training label every time."""
    label = Counter(y for _, y in data.splits["train"]).most_common(1)[0][0]
    truth = [y for _, y in test]
    return {
        "label": label,
        "accuracy": accuracy(truth, [label] * len(truth)),
        "macro_f1": macro_f1(truth, [label] * len(truth)),
    }


# ---- (a) sentence-embedding similarity ------------------------------------------------------------


def embedding_zero_shot(
    encoder: SentenceEncoder,
    texts: list[str],
    labels: list[str],
    prompts: Prompts,
    text_vectors: torch.Tensor | None = None,
) -> list[str]:
    """Each text's label whose description is most similar (cosine) to it; `text_vectors` (N, C) may be
    passed when the texts are embedded already."""
    prompts.for_labels(labels)
    described = encoder.embed([prompts.labels[label][1] for label in labels]).vectors  # (L, C)
    vectors = encoder.embed(texts).vectors if text_vectors is None else text_vectors  # (N, C)
    return [labels[i] for i in (vectors @ described.T).argmax(dim=1).tolist()]


# ---- (b) label log-likelihood under a causal LM ----------------------------------------------------


@torch.no_grad()
def extend(model: Any, ids: list[int], cache: KVBuffer | None = None) -> tuple[torch.Tensor, KVBuffer]:
    """Run `ids` after `cache` (one row, left as it is) -> the log-probabilities of the next token (V,) and
    a longer cache."""
    past = cache.repeated(1) if cache is not None else None  # a copy: the same prefix serves every query
    out = model(torch.tensor([ids]), kv_cache=past, use_cache=True)
    return out.logits[0, -1].log_softmax(-1), out.kv_cache


@torch.no_grad()
def answer_logprobs(model: Any, next_logprobs: torch.Tensor, cache: KVBuffer, answers: list[list[int]]) -> torch.Tensor:
    """log P(answer | the text the cache holds), summed over each answer's tokens -> (L,).

    `next_logprobs` (V,) is the distribution after the cached text; all answers run as one batch on a copy
    of the cache, so the shared text is computed once."""
    width = max(len(a) for a in answers)
    ids = torch.zeros(len(answers), width, dtype=torch.long)  # (L, M), right-padded: a causal model never
    for row, answer in enumerate(answers):  # lets padding reach an earlier token
        ids[row, : len(answer)] = torch.tensor(answer)
    total = next_logprobs[ids[:, 0]]  # (L,) the first token of each answer
    if width > 1:
        rows = cache.repeated(len(answers))  # the cached text once per answer
        logprobs = model(ids[:, :-1], kv_cache=rows).logits.log_softmax(-1)  # (L, M-1, V)
        following = logprobs.gather(-1, ids[:, 1:, None]).squeeze(-1)  # (L, M-1): token j+1 after 0..j
        real = torch.arange(1, width)[None, :] < torch.tensor([len(a) for a in answers])[:, None]
        total = total + (following * real).sum(dim=1)
    return total


@dataclass
class LabelScorer:
    """Scores every label's answer after prompts, for one causal LM."""

    model: Any  # a causal Transformer (or anything called the same way)
    encode: Callable[[str], list[int]]
    answers: list[str]  # one per label, in label order
    context: int  # the model's block size

    def __post_init__(self) -> None:
        self.answer_ids = [self.encode(a) for a in self.answers]
        if not all(self.answer_ids):
            raise GenlabError("a label's answer encodes to no tokens")
        self.answer_chars = torch.tensor([len(a) for a in self.answers], dtype=torch.float)  # (L,)
        self.room = self.context - max(len(a) for a in self.answer_ids)  # what prefix + query may take
        if self.room < 2:
            raise GenlabError(f"the answers do not fit the model's context of {self.context} tokens")

    def score(self, query: str, prefix: tuple[torch.Tensor, KVBuffer, int] | None = None) -> tuple[torch.Tensor, bool]:
        """Log-likelihood of each answer after [prefix] + query -> (L,), and whether the query was cut.
        A query too long for the context keeps its end (the question the answer follows)."""
        ids = self.encode(query)
        used = prefix[2] if prefix else 0
        cut = len(ids) > self.room - used
        if cut:
            ids = ids[len(ids) - (self.room - used) :]
        next_logprobs, cache = extend(self.model, ids, prefix[1] if prefix else None)
        return answer_logprobs(self.model, next_logprobs, cache, self.answer_ids), cut

    def prefix(self, text: str) -> tuple[torch.Tensor, KVBuffer, int]:
        """Run a shared beginning (in-context examples) once: (next log-probs, cache, its length)."""
        ids = self.encode(text)
        next_logprobs, cache = extend(self.model, ids)
        return next_logprobs, cache, len(ids)


def predictions(loglik: torch.Tensor, answer_chars: torch.Tensor, content_free: torch.Tensor) -> dict[str, list[int]]:
    """loglik (N, L) and content_free (F, L) answer log-likelihoods -> label ids by each decision rule.

    acc: argmax of the log-likelihood; acc_norm: of the log-likelihood per answer character. The calibrated
    rules divide each answer's probability (over the labels) by the mean probability the content-free inputs
    give it (Zhao et al. 2021: W = diag(p_cf)^-1)."""
    out = {}
    for rule, scale in (("acc", torch.ones_like(answer_chars)), ("acc_norm", answer_chars)):
        scores = (loglik / scale).log_softmax(-1)  # (N, L) log p(label | text) among the labels
        bias = (content_free / scale).softmax(-1).mean(0).log()  # (L,) log of the content-free mean
        out[rule] = scores.argmax(-1).tolist()
        out[f"{rule}_calibrated"] = (scores - bias).argmax(-1).tolist()
    return out


def score_rules(
    scorer: LabelScorer, test: list[tuple[str, str]], labels: list[str], prompts: Prompts, prefix_text: str = ""
) -> dict[str, Any]:
    """Every decision rule's accuracy and macro-F1 on `test`, after an optional shared `prefix_text`."""
    prefix = scorer.prefix(prefix_text) if prefix_text else None
    scored = [scorer.score(prompts.query(text), prefix) for text, _ in test]
    loglik = torch.stack([s for s, _ in scored])  # (N, L)
    content_free = torch.stack([scorer.score(prompts.query(t), prefix)[0] for t in prompts.content_free])  # (F, L)
    truth = [labels.index(y) for _, y in test]
    metrics: dict[str, Any] = {"macro_f1": {}}
    for rule, predicted in predictions(loglik, scorer.answer_chars, content_free).items():
        metrics[rule] = accuracy(truth, predicted)
        metrics["macro_f1"][rule] = macro_f1(truth, predicted)
    metrics["queries_cut"] = sum(cut for _, cut in scored)
    return metrics


def zero_shot(handle: Any, dataset: str = "fortunes", templates: str = "fortunes", limit: int = 0) -> dict[str, Any]:
    """Zero-shot classification of `dataset`'s test split by the run's label log-likelihoods."""
    if limit < 0:
        raise GenlabError(f"limit must be >= 0, got {limit}")
    prompts = load_prompts(templates)
    data = load_labelled_data(dataset, "classify")
    test = data.test_examples(limit)
    decoding = handle.text_decoding()
    began = time.perf_counter()
    scorer = LabelScorer(
        decoding.model.eval(), decoding.encode, prompts.for_labels(data.labels), decoding.model.config.block_size
    )
    metrics = score_rules(scorer, test, data.labels, prompts)
    return {
        "dataset": dataset,
        "templates": prompts.source,
        "examples": len(test),
        **metrics,
        "plurality": plurality_baseline(data, test),
        "score_seconds": time.perf_counter() - began,
    }


PROTOCOL = EvalProtocol(
    "zero-shot",
    ("completions",),
    zero_shot,
    "classify a labelled test split by label log-likelihood (acc, acc_norm, calibrated)",
)
