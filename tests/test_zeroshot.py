"""Zero-shot classification (genlab.evaluation.zeroshot): label log-likelihood scoring on language models
whose label preferences are known, contextual calibration on a constructed bias, and the `zero-shot` protocol
through `genlab eval RUN --protocol zero-shot` on a tiny char GPT."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.evaluation.zeroshot import LabelScorer, Prompts, answer_logprobs, extend, load_prompts, score_rules
from genlab.models.transformer import KVBuffer, Transformer, TransformerConfig
from tests.conftest import one_error_line, snapshot

VOCAB = "pqnxabc:"


class BigramLM(torch.nn.Module):
    """Next-token probabilities that depend on the last token only, set by hand: {previous: {next: p}};
    the rest of each row's mass is spread evenly. Called like a genlab Transformer (its cache stays empty:
    a bigram needs none)."""

    def __init__(self, rows: dict[str, dict[str, float]]):
        super().__init__()
        table = torch.full((len(VOCAB), len(VOCAB)), 0.0)
        for prev, nexts in rows.items():
            rest = (1 - sum(nexts.values())) / (len(VOCAB) - len(nexts))
            table[VOCAB.index(prev)] = torch.tensor([nexts.get(c, rest) for c in VOCAB])
        self.log_table = table.clamp_min(1e-9).log()  # (V, V)

    def forward(self, idx, kv_cache=None, use_cache=False):
        empty = KVBuffer(TransformerConfig(n_layer=1, n_head=1, n_embd=1), len(idx), capacity=1)
        return SimpleNamespace(logits=self.log_table[idx], kv_cache=empty)  # (B, T, V)


def encode(text: str) -> list[int]:
    return [VOCAB.index(c) for c in text]


def prompts(labels: dict[str, str]) -> Prompts:
    return Prompts({label: (name, label) for label, name in labels.items()}, "{text}", "{name}", "", ("n",), "test")


def test_cached_answer_scoring_matches_a_full_forward():
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16)).eval()
    prefix, answers = [1, 5, 2, 7], [[3], [4, 9], [8, 8, 2]]
    next_logprobs, cache = extend(model, prefix)
    got = answer_logprobs(model, next_logprobs, cache, answers)
    for score, answer in zip(got, answers):
        with torch.no_grad():
            logprobs = model(torch.tensor([prefix + answer])).logits.log_softmax(-1)[0]  # (T, V)
        expected = sum(logprobs[len(prefix) - 1 + j, t] for j, t in enumerate(answer))
        assert float(score) == pytest.approx(float(expected), abs=1e-5)


def test_a_shared_prefix_scores_every_query_as_if_it_were_written_out():
    """The prefix's cache is copied for each query: scoring one leaves it as it was for the next."""
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=len(VOCAB), block_size=16, n_layer=2, n_head=2, n_embd=16))
    scorer = LabelScorer(model.eval(), encode, ["a", "bc"], context=16)
    prefix = scorer.prefix("pq:")
    for query in ("xa", "nb:", "xa"):
        shared, _ = scorer.score(query, prefix)
        torch.testing.assert_close(shared, scorer.score("pq:" + query)[0], atol=1e-5, rtol=1e-5)


def test_acc_prefers_the_likelier_answer_and_acc_norm_the_likelier_character():
    # after "x": "a" has p 0.4; "bbb" has 0.3 * 0.9 * 0.9 = 0.243 in all, but 0.62 per character
    model = BigramLM({"x": {"a": 0.4, "b": 0.3}, "b": {"b": 0.9}, "n": {}})
    scorer = LabelScorer(model, encode, ["a", "bbb"], context=16)
    metrics = score_rules(scorer, [("x", "B")] * 4, ["A", "B"], prompts({"A": "a", "B": "bbb"}))
    assert metrics["acc"] == 0.0 and metrics["acc_norm"] == 1.0
    assert math.isclose(float(scorer.score("x")[0][1]), math.log(0.3 * 0.9 * 0.9), rel_tol=1e-5)


def test_contextual_calibration_removes_a_constructed_bias():
    # both classes' texts lean towards "a"; a content-free input ("n") shows by how much
    model = BigramLM({"p": {"a": 0.5, "c": 0.3}, "q": {"a": 0.4, "c": 0.35}, "n": {"a": 0.45, "c": 0.3}})
    scorer = LabelScorer(model, encode, ["a", "c"], context=16)
    metrics = score_rules(scorer, [("p", "A"), ("q", "C")] * 3, ["A", "C"], prompts({"A": "a", "C": "c"}))
    assert metrics["acc"] == 0.5 and metrics["acc_calibrated"] == 1.0
    assert metrics["macro_f1"]["acc_calibrated"] == 1.0 and metrics["macro_f1"]["acc"] < 0.5


def test_a_query_longer_than_the_context_keeps_its_end():
    model = BigramLM({"x": {"a": 0.9}, "p": {"a": 0.1}})
    scorer = LabelScorer(model, encode, ["a", "c"], context=4)
    scores, cut = scorer.score("ppppppx")
    assert cut and math.isclose(float(scores[0]), math.log(0.9), rel_tol=1e-5)


def test_the_shipped_prompts_describe_every_fortunes_label():
    shipped = load_prompts("fortunes")
    labels = [
        "computers",
        "cookie",
        "definitions",
        "men-women",
        "miscellaneous",
        "people",
        "politics",
        "science",
        "songs-poems",
        "work",
    ]
    assert len(shipped.for_labels(labels)) == 10 and shipped.content_free == ("N/A", "", "[MASK]")
    with pytest.raises(GenlabError, match="describes no label 'sports'"):
        shipped.for_labels(["sports"])


# ---- the protocol, through the CLI, on a tiny char GPT (tests/serving.py) ----------------------------


def write_words_task(folder: Path, corpus: Path) -> tuple[Path, Path]:
    """Sentences of the tiny corpus labelled by whether they hold the word "light", and prompts for them."""
    sentences = corpus.read_text().splitlines()
    data = folder / "words.jsonl"
    data.write_text(
        "".join(json.dumps({"text": s, "label": "bright" if "light" in s else "plain"}) + "\n" for s in sentences)
    )
    templates = folder / "words.yaml"
    templates.write_text(
        yaml.safe_dump(
            {
                "labels": {
                    "bright": {"name": "light", "description": "light"},
                    "plain": {"name": "waters", "description": "waters"},
                },
                "prompt": "{text} was",
                "answer": " {name}",
                "separator": "\n",
                "content_free": ["", "the"],
            }
        )
    )
    return data, templates


@pytest.fixture
def lm_run(served_runs, tmp_path):
    return shutil.copytree(served_runs["lm"], tmp_path / "lm")


@pytest.fixture
def words_task(served_runs, lm_run):
    return write_words_task(lm_run, served_runs["lm"].parent / "lm-data" / "corpus.txt")


def test_the_zero_shot_protocol_scores_a_completions_run(lm_run, words_task):
    data, templates = words_task
    assert (
        main(["eval", str(lm_run), "--protocol", "zero-shot", "--dataset", str(data), "--templates", str(templates)])
        == 0
    )
    section = json.loads((lm_run / "report.json").read_text())["zero-shot"]
    rules = ("acc", "acc_norm", "acc_calibrated", "acc_norm_calibrated")
    assert all(0 <= section[r] <= 1 for r in rules) and set(section["macro_f1"]) == set(rules)
    assert section["examples"] > 0 and section["plurality"]["label"] in ("bright", "plain")


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--templates", "no-such-prompts"], "unknown templates 'no-such-prompts'"),
        (["--limit", "-1"], "limit must be >= 0"),
    ],
)
def test_bad_zero_shot_requests_are_one_line(lm_run, words_task, capsys, arguments, expected):
    data, templates = words_task
    before = snapshot(lm_run)
    assert (
        main(
            [
                "eval",
                str(lm_run),
                "--protocol",
                "zero-shot",
                "--dataset",
                str(data),
                "--templates",
                str(templates),
                *arguments,
            ]
        )
        == 2
    )
    one_error_line(capsys, expected)
    assert snapshot(lm_run) == before


def test_zero_shot_refuses_a_classifier_run(served_runs, capsys):
    assert main(["eval", str(served_runs["finetune"]), "--protocol", "zero-shot"]) == 2
    one_error_line(capsys, "protocol 'zero-shot' scores completions runs")
