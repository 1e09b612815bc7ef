"""Few-shot learning (genlab.evaluation.fewshot): k examples per class drawn the same way for every seed, the
fine-tuning task's `data.per_class`, SetFit-style pairs and training, in-context prompts and the `in-context`
protocol through `genlab eval RUN --protocol in-context`."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from genlab.cli import main
from genlab.data.labelled import LabelledData
from genlab.errors import GenlabError
from genlab.evaluation.fewshot import (
    ContrastiveConfig,
    contrastive_finetune,
    contrastive_pairs,
    demonstrations,
    logistic_head,
    tfidf_logreg,
)
from genlab.evaluation.sentence import SentenceEncoder
from genlab.evaluation.zeroshot import Prompts
from genlab.io.tokenizers import CharTokenizer
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks import TASKS
from tests.conftest import one_error_line, snapshot
from tests.test_zeroshot import write_words_task

ROOT = Path(__file__).resolve().parent.parent


def labelled(per_label: dict[str, int]) -> LabelledData:
    train = [(f"{label} example {i}", label) for label, n in per_label.items() for i in range(n)]
    held_out = [(f"{label} held out", label) for label in per_label]
    data = LabelledData("classify", "constructed", {"train": train, "validation": held_out, "test": held_out})
    data.check()
    return data


def test_k_per_class_sampling_is_fixed_by_the_seed_in_choice_and_order():
    data = labelled({"a": 12, "b": 7, "c": 30})
    first = data.per_class_examples(4, seed=3)
    assert first == data.per_class_examples(4, seed=3)  # the same examples, in the same order
    assert Counter(y for _, y in first) == {"a": 4, "b": 4, "c": 4} and len(set(first)) == 12
    others = [data.per_class_examples(4, seed=s) for s in range(4, 9)]
    assert all(o != first for o in others)
    assert any(set(o) != set(first) for o in others)  # other examples, not only another order
    assert data.training_examples(0, 0, per_class=4, subset_seed=3) == first


def test_k_larger_than_a_class_is_one_line():
    with pytest.raises(GenlabError, match="k=8 examples per class, but label 'b' has only 7 training examples"):
        labelled({"a": 12, "b": 7}).per_class_examples(8, seed=0)


@pytest.fixture
def tiny_finetune(tmp_path):
    tiny = TASKS["finetune"].tiny(tmp_path / "data")
    return [o for o in tiny.overrides if not o.startswith(("data.limit=", "data.batch_size="))]


def test_finetune_trains_on_k_examples_per_class(tiny_finetune, tmp_path):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "fortunes-lora",
                "--out",
                str(run),
                *tiny_finetune,
                "data.per_class=5",
                "data.subset_seed=2",
                "data.batch_size=5",
                "train.epochs=1",
            ]
        )
        == 0
    )
    assert json.loads((run / "report.json").read_text())["finetune"]["train_examples"] == 15  # labels a, b, c


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("data.per_class=100000", "k=100000 examples per class, but label"),
        ("data.limit=20", "not set together with data.limit"),
    ],
)
def test_bad_per_class_requests_exit_2_with_one_line(tiny_finetune, tmp_path, capsys, setting, expected):
    run = tmp_path / "run"
    extra = [setting] + (["data.per_class=2"] if setting.startswith("data.limit") else [])
    assert main(["train", "fortunes-lora", "--out", str(run), *tiny_finetune, *extra]) == 2
    one_error_line(capsys, expected)
    assert not run.exists()


def test_contrastive_pairs_follow_setfit():
    labels = ["a", "a", "b", "c"]
    pairs = contrastive_pairs(labels, iterations=3, rng=random.Random(0))
    assert len(pairs) == 3 * 4 * 2
    for i, j, target in pairs:
        assert (labels[i] == labels[j]) == (target == 1.0)
    assert all(j == i for i, j, t in pairs if t == 1.0 and labels[i] != "a")  # a class of one pairs with itself


def tiny_encoder(texts: list[str]) -> SentenceEncoder:
    torch.manual_seed(0)
    tokenizer = CharTokenizer.train(texts)
    config = TransformerConfig(
        vocab_size=tokenizer.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16, causal=False
    )
    return SentenceEncoder(Transformer(config), tokenizer)


def test_contrastive_fine_tuning_pulls_classes_apart():
    words = "thou hast light dark waters heaven good".split()
    rng = random.Random(0)
    examples = [(" ".join([first] + rng.sample(words, 3)), first) for first in ("thou", "hast") for _ in range(6)]
    encoder = tiny_encoder([t for t, _ in examples])

    def separation() -> float:
        vectors = encoder.embed([t for t, _ in examples]).vectors  # (12, C)
        cos = vectors @ vectors.T
        same = torch.tensor([[a[1] == b[1] for b in examples] for a in examples])
        return float(cos[same].mean() - cos[~same].mean())

    before = separation()
    trained = contrastive_finetune(encoder, examples, ContrastiveConfig(iterations=10, max_pairs=160, lr=3e-3))
    assert separation() > before + 0.2
    assert trained["steps"] == 10 and trained["flops"] > 0


def test_the_heads_learn_a_separable_task():
    train = [("red apple", "fruit"), ("green pear", "fruit"), ("fast car", "vehicle"), ("slow bus", "vehicle")]
    assert tfidf_logreg(train, ["apple pie", "bus stop"]) == ["fruit", "vehicle"]
    vectors = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert logistic_head(vectors, [y for _, y in train], torch.tensor([[0.8, 0.2], [0.2, 0.8]])) == ["fruit", "vehicle"]


def test_demonstrations_keep_their_order_and_the_budget():
    prompts = Prompts({"a": ("yes", ""), "b": ("no", "")}, "{text}:", " {name}", ";", ("",), "test")
    examples = [("x" * 3, "a"), ("y" * 30, "b"), ("z", "b")]
    prefix, used = demonstrations(prompts, examples, lambda s: list(s), budget=16)
    assert prefix == "xxx: yes;z: no;" and used == 2  # the long one does not fit, the next still does


# ---- the protocol, through the CLI, on a tiny char GPT ------------------------------------------------


@pytest.fixture
def lm_run(served_runs, tmp_path):
    run = shutil.copytree(served_runs["lm"], tmp_path / "lm")
    return run, write_words_task(run, served_runs["lm"].parent / "lm-data" / "corpus.txt")


def test_the_in_context_protocol_scores_a_completions_run(lm_run):
    run, (data, templates) = lm_run
    assert (
        main(
            [
                "eval",
                str(run),
                "--protocol",
                "in-context",
                "--dataset",
                str(data),
                "--templates",
                str(templates),
                "--k",
                "2",
                "--seeds",
                "2",
                "--query-tokens",
                "12",
            ]
        )
        == 0
    )
    section = json.loads((run / "report.json").read_text())["in-context"]
    assert section["k"] == 2 and section["context"] == 32 and len(section["in_prompt"]) == 2
    assert all(0 <= used <= 2 * 2 for used in section["in_prompt"])
    assert len(section["macro_f1"]["acc"]["seeds"]) == 2 and section["macro_f1"]["acc"]["sd"] >= 0


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--k", "100000", "--query-tokens", "12"], "k=100000 examples per class, but label"),
        (["--query-tokens", "40"], "leaves no room for examples"),
        (["--seeds", "0"], "needs k, seeds, query_tokens >= 1"),
    ],
)
def test_bad_in_context_requests_are_one_line(lm_run, capsys, arguments, expected):
    run, (data, templates) = lm_run
    before = snapshot(run)
    assert (
        main(
            [
                "eval",
                str(run),
                "--protocol",
                "in-context",
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
    assert snapshot(run) == before


def test_the_benchmark_script_explains_itself():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fewshot_benchmark.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0 and result.stdout.startswith("usage:")
