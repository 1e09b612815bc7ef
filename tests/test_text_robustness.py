"""Robustness of text classifiers: the perturbations (genlab.evaluation.text_robustness), the `noise` protocol
(`genlab eval RUN --protocol noise`) on a tiny fine-tuned classifier, and training on noisy texts
(a fine-tuning recipe's data.noise), whose resume must stay exact."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genlab import api, load
from genlab.cli import main
from genlab.core.trainer import Interrupted
from genlab.data.labelled import load_labelled_data
from genlab.errors import GenlabError
from genlab.evaluation import text_robustness
from genlab.evaluation.text_metrics import accuracy
from genlab.evaluation.text_robustness import KEYBOARD_NEIGHBOURS, KINDS, perturb, perturb_all
from genlab.io.wordnet import synonyms_table
from genlab.tasks import TASKS, load_recipe
from genlab.tasks.finetune.tiny import write_tiny_start
from genlab.tasks.launch import train_run
from tests.conftest import assert_same_weights, one_error_line, snapshot, weights
from tests.serving import write_tiny_seq2seq

TEXT = (
    "A computer lets you make more mistakes faster than any other invention, with the possible exceptions "
    "of handguns and Tequila. Never trust a computer you cannot throw out of a window."
)
NOISE = ["data.noise.kinds=[char,keyboard,synonym]", "data.noise.rate=0.5", "data.noise.prob=0.7"]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def letters(text: str) -> int:
    return sum(c.isascii() and c.isalpha() for c in text)


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


@pytest.mark.parametrize("kind", KINDS)
def test_perturbations_are_deterministic_per_seed(kind):
    assert perturb(TEXT, kind, 0.2, rng(3)) == perturb(TEXT, kind, 0.2, rng(3))
    assert perturb(TEXT, kind, 0.2, rng(3)).text != perturb(TEXT, kind, 0.2, rng(4)).text
    texts = [TEXT, TEXT.upper(), "Short one."]
    # each text has its own generator: perturbing a subset gives the same result for it
    assert perturb_all(texts, kind, 0.3, seed=7)[:2] == perturb_all(texts[:2], kind, 0.3, seed=7)


@pytest.mark.parametrize("kind", KINDS)
def test_rate_zero_is_the_identity(kind):
    assert perturb(TEXT, kind, 0.0, rng()).text == TEXT and perturb(TEXT, kind, 0.0, rng()).changed == 0


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5, 1.0])
def test_keyboard_typos_change_the_asked_fraction_of_letters_to_neighbouring_keys(rate):
    noisy = perturb(TEXT, "keyboard", rate, rng()).text
    assert len(noisy) == len(TEXT)
    changed = [(a, b) for a, b in zip(TEXT, noisy) if a != b]
    assert len(changed) == round(rate * letters(TEXT))
    assert all(b.lower() in KEYBOARD_NEIGHBOURS[a.lower()] and a.isupper() == b.isupper() for a, b in changed)
    assert KEYBOARD_NEIGHBOURS["g"] == "tyfhvb" and KEYBOARD_NEIGHBOURS["q"] == "wa"


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.3])
def test_character_noise_makes_about_rate_times_letters_edits(rate):
    n = round(rate * letters(TEXT))
    for seed in range(3):
        p = perturb(TEXT, "char", rate, rng(seed))
        # one edit per chosen letter; two edits next to each other can sometimes be undone more cheaply
        assert p.changed == n and p.units == letters(TEXT)
        assert 0.8 * n <= edit_distance(TEXT, p.text) <= n


def test_synonym_noise_replaces_the_asked_fraction_of_words_it_knows(monkeypatch):
    table = {
        "computer": ("machine",),
        "mistakes": ("errors",),
        "faster": ("quicker",),
        "trust": ("believe",),
        "window": ("pane",),
        "throw": ("toss",),
        "other": ("different",),
        "possible": ("likely",),
    }
    monkeypatch.setattr(text_robustness, "synonyms_table", lambda: table)
    words = TEXT.split()
    # 31 words, 8 of them in the table and not stop words ("other" is one; "computer" comes twice)
    for rate, expected in [(0.1, 3), (0.2, 6), (0.5, 8)]:
        p = perturb(TEXT, "synonym", rate, rng())
        swapped = [(a, b) for a, b in zip(words, p.text.split()) if a != b]
        assert p.units == 31 and p.changed == len(swapped) == expected
        assert all(table[a.strip(".,").lower()][0] == b.strip(".,").lower() for a, b in swapped)


def test_wordnet_synonyms_from_the_debian_database():
    table = synonyms_table()
    assert "quicker" in table["faster"] and "calculator" in table["computer"] and "the" not in table
    noisy = perturb("The computer is faster", "synonym", 0.5, rng())
    head, tail = noisy.text.removeprefix("The ").split(" is ")
    assert noisy.changed == 2 and head in table["computer"] and tail in table["faster"]


def test_a_missing_wordnet_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("GENLAB_WORDNET_DIR", str(tmp_path))
    synonyms_table.cache_clear()
    try:
        with pytest.raises(GenlabError, match="WordNet's database is not in .*apt-get install wordnet-base"):
            perturb(TEXT, "synonym", 0.1, rng())
    finally:
        synonyms_table.cache_clear()


@pytest.mark.parametrize(
    "kind, rate, expected",
    [
        ("blur", 0.1, "unknown perturbation kind 'blur'"),
        ("char", -0.1, "rate is a fraction in [0, 1], got -0.1"),
        ("char", 1.5, "rate is a fraction in [0, 1], got 1.5"),
    ],
)
def test_bad_perturbations_are_refused(kind, rate, expected):
    with pytest.raises(GenlabError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        perturb(TEXT, kind, rate, rng())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The fine-tuning task's tiny run (a classifier), trained clean: (TinyRun, run directory)."""
    folder = tmp_path_factory.mktemp("tiny-finetune")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_OFFLINE", "1")
        case = TASKS["finetune"].tiny(folder)
        return case, api.fit(case.recipe, folder / "clean" / "run", case.overrides)[0]


@pytest.fixture
def classifier_run(tiny, tmp_path):
    return shutil.copytree(tiny[1], tmp_path / "classifier")


def test_noise_protocol_through_the_cli(classifier_run, capsys):
    options = ["--kinds", "char,keyboard", "--rates", "0.5,0", "--seed", "3"]
    assert main(["eval", str(classifier_run), "--protocol", "noise", *options]) == 0
    section = json.loads((classifier_run / "report.json").read_text())["noise"]
    handle = load(classifier_run)
    test = load_labelled_data(handle.recipe.data.dataset, "classify").splits["test"]
    clean = accuracy([label for _, label in test], [s.label for s in handle.classify([t for t, _ in test])])
    assert section["examples"] == len(test) and section["rates"] == [0.0, 0.5]
    for kind in ("char", "keyboard"):
        at_zero, at_half = section["curves"][kind]
        assert at_zero == {"rate": 0.0, "accuracy": clean, "macro_f1": at_zero["macro_f1"], "changed": 0.0}
        assert at_half["rate"] == 0.5 and abs(at_half["changed"] - 0.5) < 0.02
    assert (classifier_run / "noise.png").read_bytes().startswith(b"\x89PNG")
    again = handle.evaluate_protocol("noise", kinds="char,keyboard", rates="0,0.5", seed=3)
    assert again["curves"] == section["curves"]


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--rates", "0,-0.1"], "rate is a fraction in [0, 1], got -0.1"),
        (["--rates", "0.2,1.5"], "rate is a fraction in [0, 1], got 1.5"),
        (["--rates", "a lot"], "rates must be numbers separated by commas"),
        (["--kinds", "char,blur"], "unknown perturbation kind 'blur'"),
        (["--limit", "-1"], "limit must be >= 0"),
    ],
)
def test_bad_noise_options_are_one_line_and_exit_2(classifier_run, capsys, arguments, expected):
    before = snapshot(classifier_run)
    assert main(["eval", str(classifier_run), "--protocol", "noise", *arguments]) == 2
    one_error_line(capsys, expected)
    assert snapshot(classifier_run) == before


@pytest.mark.parametrize(
    "override, expected",
    [
        ("data.noise.kinds=[char,blur]", "data.noise.kinds: unknown kind 'blur'"),
        ("data.noise.rate=1.5", "data.noise.rate and data.noise.prob must be in [0, 1]"),
        ("data.noise.prob=-0.5", "data.noise.rate and data.noise.prob must be in [0, 1]"),
        ("data.noise.strength=2", "unknown recipe key 'data.noise.strength'"),
    ],
)
def test_the_noise_recipe_field_is_validated(override, expected, tmp_path, capsys):
    with pytest.raises(GenlabError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_recipe("fortunes-lora-noisy", [override])
    assert main(["train", "fortunes-lora-noisy", override, "--out", str(tmp_path / "run")]) == 2
    one_error_line(capsys, expected)
    assert not (tmp_path / "run").exists()
    assert load_recipe("fortunes-lora-noisy", []).data.noise.kinds == list(KINDS)


def test_noise_is_refused_for_a_seq2seq_run(tiny, tmp_path, capsys):
    sentences = (tiny[1].parent.parent / "corpus.txt").read_text().splitlines()
    start = write_tiny_start(tmp_path / "start", sentences + ["<bos> <eos>"])
    data = write_tiny_seq2seq(tmp_path / "reverse.jsonl", sentences)
    overrides = [f"start={start}", f"data.dataset={data}", "data.kind=seq2seq", "data.noise.kinds=[char]"]
    assert main(["train", "modernize-full", *overrides, "--out", str(tmp_path / "run")]) == 2
    one_error_line(capsys, "data.noise perturbs texts to classify; a seq2seq run takes none")
    assert not (tmp_path / "run").exists()


def test_noisy_training_differs_from_clean_and_resumes_exactly(tiny, tmp_path):
    case, clean_run = tiny
    overrides = case.overrides + NOISE
    noisy_run, report = api.fit(case.recipe, tmp_path / "noisy", overrides)
    with pytest.raises(AssertionError):
        assert_same_weights(weights(clean_run), weights(noisy_run))  # the noise reached the training texts
    task = TASKS["finetune"]
    steps = report["cost"]["steps"]
    cut_at = steps // 2 + 1

    def interrupted(recipe, env, run_dir):
        training = task.training(recipe, env, run_dir)
        real_step = training.train_step

        def step(indices, step):
            if step == cut_at:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C; the step still finishes
            return real_step(indices, step)

        training.train_step = step
        return training

    recipe = load_recipe(case.recipe, overrides)
    with pytest.raises(Interrupted):
        train_run(dataclasses.replace(task, training=interrupted), recipe, tmp_path / "cut")
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 0
    assert_same_weights(weights(noisy_run), weights(tmp_path / "cut"))


@pytest.mark.parametrize("script", ["text_robustness_benchmark.py", "transfer_benchmark.py"])
def test_the_benchmark_scripts_import_and_explain_themselves(script):
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, str(root / "benchmarks" / script), "--help"], capture_output=True, text=True, cwd=root
    )
    assert result.returncode == 0 and result.stdout.startswith("usage:"), result.stderr[-2000:]
