"""Fine-tuning runs end to end on tiny data: classification and seq2seq from a tiny genlab GPT, each
method, the adapter-only delta, resume, the CLI (train -> eval -> generate -> report), bad input."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import onnxruntime
import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.api import fit
from genlab.cli import main
from genlab.core.checkpoint import load_weights, read_meta
from genlab.core.run import RunDir
from genlab.errors import GenlabError
from genlab.io.weights import read_tensors
from genlab.peft.methods import DELTA_WEIGHTS, apply_method, load_delta
from genlab.tasks import recipe_from_tree
from genlab.tasks.finetune.handle import FinetuneRun, LabelScores, load_finetuned
from genlab.tasks.finetune.starts import load_start
from genlab.tasks.finetune.training import FinetuneTraining, build_model
from tests.conftest import one_error_line

WORDS = "thou hast you have the light and darkness of waters under heaven was good".split()
MODERN = {"thou": "you", "hast": "have"}


def tiny_start_overrides(text_path) -> list[str]:
    settings = {
        "data.corpus": str(text_path),
        "data.block_size": 64,
        "data.batch_size": 4,
        "model.n_layer": 2,
        "model.n_head": 2,
        "model.n_embd": 32,
        "train.max_iters": 4,
        "train.eval_interval": 4,
        "train.warmup_iters": 1,
        "train.progress": False,
        "eval.eval_iters": 1,
    }
    return [f"{k}={v}" for k, v in settings.items()]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny corpus, a 3-class classification file whose label is the text's first word, and a
    seq2seq file that "modernizes" thou/hast. Returns their paths and two tiny GPT start runs."""
    folder = tmp_path_factory.mktemp("finetune")
    rng = np.random.default_rng(0)
    sentences = sorted({" ".join(rng.choice(WORDS, size=3)) for _ in range(900)})
    (folder / "corpus.txt").write_text("\n".join(sentences) + "\n")
    with open(folder / "classify.jsonl", "w") as f:
        for s in sentences:
            label = {"thou": "a", "hast": "b"}.get(s.split()[0], "c")
            f.write(json.dumps({"text": s, "label": label}) + "\n")
    with open(folder / "seq2seq.jsonl", "w") as f:
        for s in sentences:
            f.write(json.dumps({"source": s, "target": " ".join(MODERN.get(w, w) for w in s.split())}) + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_OFFLINE", "1")
        for seed in (0, 1):
            fit("char-gpt-kjv", folder / f"start{seed}", [*tiny_start_overrides(folder / "corpus.txt"), f"seed={seed}"])
    return folder


def finetune(files, out, dataset, method: str, **extra) -> list[str]:
    """CLI arguments fine-tuning the tiny start0 GPT on `dataset` (a file name in `files`, or a path)."""
    settings = {
        "start": str(files / "start0"),
        "data.dataset": str(files / dataset),
        "data.batch_size": 8,
        "data.max_tokens": 64,
        "method.name": method,
        "method.top_k": 1,
        "method.rank": 2,
        "method.target_modules": "[attn.qkv,mlp.fc]",
        "method.bottleneck": 4,
        "train.epochs": 1,
        "train.lr": 3e-3,
        "train.warmup_iters": 2,
        "train.progress": False,
        "eval.max_new_tokens": 24,
        **extra,
    }
    return ["train", "fortunes-full", *(f"{k}={v}" for k, v in settings.items()), "--out", str(out)]


def base_tensors(run) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last" / "model.safetensors"))


@pytest.mark.parametrize("method", ["full", "freeze", "lora", "adapter"])
def test_classification_run_trains_evaluates_and_keeps_frozen_weights(files, tmp_path, method, capsys):
    run = tmp_path / method
    assert main(finetune(files, run, "classify.jsonl", method, **{"train.epochs": 3})) == 0
    assert main(["eval", str(run)]) == 0
    report = json.loads((run / "report.json").read_text())
    test, ft = report["test"], report["finetune"]
    assert 0 <= test["macro_f1"] <= 1 and test["baseline"]["name"].startswith("tf-idf")
    assert (run / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ft["method"] == method and 0 < ft["trainable_parameters"] <= ft["total_parameters"]
    assert ft["dataset"] == str(files / "classify.jsonl") and ft["kind"] == "classify" and "task" not in ft
    # The first word decides the label, so every method learns it well past chance (1/3).
    assert test["accuracy"] > 0.6, test
    start, tuned = base_tensors(files / "start0"), base_tensors(run)
    unchanged = {k for k, v in start.items() if torch.equal(v, tuned[f"backbone.{k}"])}
    if method in ("lora", "adapter"):
        assert unchanged == set(start)  # the base never changes
        assert ft["trainable_fraction"] < 0.5
    elif method == "freeze":  # embeddings and block 0 frozen, block 1 and the final LayerNorm trained
        assert {"tok_emb.weight", "pos_emb.weight", "blocks.0.attn.qkv.weight"} <= unchanged
        assert "blocks.1.attn.qkv.weight" not in unchanged
    else:
        assert "blocks.0.attn.qkv.weight" not in unchanged
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt", "thou was good"]) == 0
    printed = capsys.readouterr().out.strip()
    # "label p, label p, label p": the three likeliest labels, likeliest first
    shown = [item.rsplit(" ", 1) for item in printed.split(", ")]
    assert sorted(label for label, _ in shown) == ["a", "b", "c"], printed
    probs = [float(p) for _, p in shown]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=0.02), printed
    # The Python API: the same answer as a LabelScores, and a batch of texts at once.
    handle = genlab.load(run)
    assert isinstance(handle, FinetuneRun) and handle.kind == "classify"
    answer = handle.generate("thou was good")
    assert isinstance(answer, LabelScores) and str(answer) == printed and answer.label == shown[0][0]
    assert [str(a) for a in handle.classify(["thou was good", "hast the light"])][0] == printed


def test_seq2seq_run_learns_the_mapping_and_beats_the_copy_baseline(files, tmp_path, capsys):
    run = tmp_path / "s2s"
    assert main(finetune(files, run, "seq2seq.jsonl", "full", **{"train.epochs": 10, "train.lr": 1e-2})) == 0
    assert main(["eval", str(run)]) == 0
    test = json.loads((run / "report.json").read_text())["test"]
    assert test["signature"]["bleu"].startswith("nrefs:1") and test["baseline"]["name"] == "copy the source"
    assert test["bleu"] > test["baseline"]["bleu"], test
    outputs = [json.loads(line) for line in (run / "test_outputs.jsonl").read_text().splitlines()]
    assert len(outputs) == test["examples"]
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt", "thou hast light"]) == 0
    assert capsys.readouterr().out.strip() == "you have light"
    assert genlab.load(run).generate("thou hast light") == "you have light"
    assert main(["generate", str(run), "--prompt", " "]) == 2
    one_error_line(capsys, "source text is empty")
    assert main(["generate", str(run), "--prompt", "thou", "--temperature", "0.5"]) == 2
    one_error_line(capsys, "a 'finetune' run does not take temperature for generate")
    with pytest.raises(GenlabError, match="is a seq2seq run, not a classifier"):
        genlab.load(run).classify(["thou hast light"])
    # its ONNX export decodes the same answer greedily in onnxruntime (no cache: the whole sequence each step)
    handle = genlab.load(run)
    handle.export(tmp_path / "s2s.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "s2s.onnx"))
    ids = handle.codec.source_ids("thou hast light")
    answer: list[int] = []
    while len(answer) < 30:
        logits = session.run(None, {"input_ids": np.array([ids + answer])})[0]  # (1, T, V)
        if (token := int(logits[0, -1].argmax())) == handle.codec.eos_id:
            break
        answer.append(token)
    assert handle.codec.tokenizer.decode(answer).strip() == "you have light"


def test_adapter_delta_is_small_and_refuses_another_base(files, tmp_path):
    run = tmp_path / "lora"
    assert main(finetune(files, run, "classify.jsonl", "lora")) == 0
    delta = run / "adapter" / DELTA_WEIGHTS
    assert delta.stat().st_size < 0.5 * (run / "checkpoints" / "last" / "model.safetensors").stat().st_size
    # What trained and nothing else: the LoRA matrices of the targets and the task head.
    names = set(read_tensors(delta))
    assert names == {
        f"backbone.blocks.{i}.{m}.lora_{ab}" for i in range(2) for m in ("attn.qkv", "mlp.fc") for ab in "AB"
    } | {"head.weight", "head.bias"}, sorted(names)
    recipe = recipe_from_tree(RunDir(run).read_config())
    model, codec = load_finetuned(RunDir(run), recipe)  # start + delta, LoRA merged for serving

    def build(start) -> torch.nn.Module:
        backbone, _ = load_start(str(start), recipe.init, recipe.seed)
        return apply_method(build_model(backbone, "classify", len(codec.labels)), backbone, recipe.method)

    checkpoint = run / "checkpoints" / "last"
    trained = build(files / "start0")
    load_weights(checkpoint, {"model": trained}, read_meta(checkpoint))
    ids = torch.tensor([codec.tokenizer.encode("thou was good"), codec.tokenizer.encode("the light was")])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        torch.testing.assert_close(model(ids, mask), trained.eval()(ids, mask), rtol=1e-5, atol=1e-5)
    # The same delta on a start trained with another seed: refused.
    wrong = build(files / "start1")
    with pytest.raises(GenlabError, match="different base model"):
        load_delta(wrong, run / "adapter")


def test_ctrl_c_then_resume_equals_uninterrupted(files, tmp_path, monkeypatch, capsys):
    args = lambda out: finetune(files, out, "classify.jsonl", "lora", **{"train.epochs": 2})  # noqa: E731
    assert main(args(tmp_path / "straight")) == 0
    real_step = FinetuneTraining.train_step

    def interrupted_step(self, indices, step):
        if step == 99:  # in the second epoch
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends; the step still finishes
        return real_step(self, indices, step)

    monkeypatch.setattr(FinetuneTraining, "train_step", interrupted_step)
    capsys.readouterr()
    assert main(args(tmp_path / "cut")) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genlab: interrupted at step 100; resumable checkpoint saved"), err
    monkeypatch.setattr(FinetuneTraining, "train_step", real_step)
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 0
    a, b = base_tensors(tmp_path / "straight"), base_tensors(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The shipped delta (written after each epoch) is the same too.
    da, db = (read_tensors(run / "adapter" / DELTA_WEIGHTS) for run in (tmp_path / "straight", tmp_path / "cut"))
    assert da.keys() == db.keys() and all(torch.equal(da[k], db[k]) for k in da)
    reports = [json.loads((tmp_path / r / "report.json").read_text()) for r in ("straight", "cut")]
    assert reports[0]["validation"] == reports[1]["validation"]
    assert reports[1]["cost"]["periods"] == 2 and reports[1]["cost"]["steps_this_session"] < reports[1]["cost"]["steps"]


def test_report_table_from_real_runs(files, tmp_path, capsys):
    runs = [tmp_path / m for m in ("full", "lora")]
    for run, method in zip(runs, ("full", "lora")):
        assert main(finetune(files, run, "classify.jsonl", method)) == 0
        assert main(["eval", str(run)]) == 0
    capsys.readouterr()
    assert main(["report", *map(str, runs), "--out", str(tmp_path / "cmp")]) == 0
    table = (tmp_path / "cmp" / "report.md").read_text()
    assert "| full " in table and "| lora " in table
    rows = [line.split(" | ") for line in table.splitlines()[2:] if line.startswith("|")]
    assert [(r[0].lstrip("| "), r[1], r[3]) for r in rows] == [
        ("full", "classify.jsonl", "full"),
        ("lora", "classify.jsonl", "lora"),
    ]
    assert (tmp_path / "cmp" / "quality_vs_cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "records, overrides, expected",
    [
        (
            [{"text": f"x {i}", "label": "a" if i % 2 else "b"} for i in range(300)] + [{"text": "?", "label": "z"}],
            {},
            "never occurs in the training data",
        ),
        ([{"source": "" if i == 0 else f"w {i}", "target": f"v {i}"} for i in range(300)], {}, "an empty source"),
        (
            [{"text": f"x {i}", "label": "a" if i % 2 else "b"} for i in range(300)],
            {"method.name": "lora", "method.target_modules": "[attn.query]"},
            "unknown LoRA target module 'attn.query'",
        ),
        (
            [{"source": f"w {i}", "target": f"v {i}"} for i in range(300)],
            {"start": "minilm"},
            "needs a causal (GPT) start",
        ),
        ([{"text": f"x {i}"} for i in range(30)], {}, 'string fields "text" and "label"'),
    ],
)
def test_bad_input_is_one_line_and_no_run(files, tmp_path, capsys, records, overrides, expected):
    path = tmp_path / "data.jsonl"
    if records[-1].get("label") == "z":  # find a text that the fixed split puts in the test split
        from genlab.data.text import split_of

        records[-1]["text"] = next(f"only in test {i}" for i in range(1000) if split_of(f"only in test {i}") == "test")
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "run"
    assert main(finetune(files, out, path, overrides.pop("method.name", "full"), **overrides)) == 2
    one_error_line(capsys, expected)
    assert not out.exists()


def test_unknown_dataset_and_adapter_on_changed_base(files, tmp_path, capsys):
    assert main(finetune(files, tmp_path / "r", "nope.jsonl", "full")) == 2
    one_error_line(capsys, "unknown fine-tuning dataset")
    run = tmp_path / "adapter"
    assert main(finetune(files, run, "classify.jsonl", "adapter")) == 0
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt", "thou", "--checkpoint", "best"]) == 2
    one_error_line(capsys, "fine-tuning runs keep their last checkpoint only")
    config = (run / "config.yaml").read_text().replace(str(files / "start0"), str(files / "start1"))
    (run / "config.yaml").write_text(config)  # as if the start run had been retrained since
    assert main(["eval", str(run)]) == 2
    one_error_line(capsys, "was trained on a different base model")
