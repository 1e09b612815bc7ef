"""Language-model runs on a tiny text file: resume, accumulation, masked LM, the CLI end to
end (train -> eval -> generate), the Python API, the Hugging Face export, and bad input (one line, exit 2)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import genlab
from genlab.api import fit
from genlab.cli import main
from genlab.core.optim import cosine_lr
from genlab.core.run import RunDir
from genlab.core.trainer import Interrupted
from genlab.errors import GenlabError
from genlab.interop.hf import load_gpt2, load_hf_bert
from genlab.tasks import load_recipe
from genlab.tasks.lm.handle import load_lm
from genlab.tasks.lm.training import LMTraining
from tests.conftest import one_error_line

WORDS = "the light and darkness of waters under heaven was good in earth seed fruit after his kind".split()


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory):
    """400 distinct lines (~25k characters) of word salad: enough for every split to hold blocks."""
    rng = np.random.default_rng(0)
    lines = [f"{i}: " + " ".join(rng.choice(WORDS, size=8)) + "." for i in range(400)]
    path = tmp_path_factory.mktemp("text") / "tiny.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_lm(text_path, **extra: object) -> list[str]:
    """Overrides that make char-gpt-kjv train on the tiny file in about a second."""
    settings = {
        "data.corpus": str(text_path),
        "data.block_size": 16,
        "data.batch_size": 4,
        "model.n_layer": 1,
        "model.n_head": 2,
        "model.n_embd": 16,
        "model.dropout": 0.1,
        "train.max_iters": 12,
        "train.eval_interval": 4,
        "train.warmup_iters": 2,
        "train.progress": False,
        "eval.eval_iters": 2,
        **extra,
    }
    return [f"{k}={v}" for k, v in settings.items()]


def train(run_path, overrides: list[str], resume: bool = False) -> dict:
    """`genlab train char-gpt-kjv OVERRIDES --out RUN` (or `--resume RUN`) through the Python API; the report."""
    if resume:
        return fit(run_path, overrides=overrides, resume=True)[1]
    return fit("char-gpt-kjv", run_path, overrides)[1]


def weights(run_path, checkpoint: str = "last") -> dict[str, torch.Tensor]:
    return load_file(str(run_path / "checkpoints" / checkpoint / "model.safetensors"))


def test_char_gpt_kjv_recipe_is_the_issues_setting():
    r = load_recipe("char-gpt-kjv")
    assert (r.data.corpus, r.data.tokenizer, r.data.block_size, r.data.batch_size) == ("bible-kjv", "char", 64, 12)
    assert (r.model.n_layer, r.model.n_head, r.model.n_embd, r.model.dropout, r.model.objective) == (
        4,
        4,
        128,
        0.0,
        "causal",
    )
    assert (r.train.max_iters, r.train.lr, r.train.min_lr, r.train.betas[1]) == (2000, 1e-3, 1e-4, 0.99)


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.tokenizer=wordpiece", "data.tokenizer must be char or bpe"),
        ("model.objective=denoise", "model.objective must be causal or masked"),
        ("data.corpus=[]", "data.corpus must name at least one corpus"),
        ("train.min_lr=1.0", "0 <= min_lr <= lr"),
        ("train.r1_gamma=1", "unknown recipe key 'train.r1_gamma'"),
    ],
)
def test_bad_lm_recipes_fail_with_one_clear_message(override, message):
    with pytest.raises(GenlabError, match=message):
        load_recipe("char-gpt-kjv", [override])


def test_schedule_warms_up_then_decays_to_min_lr():
    lrs = [cosine_lr(s, 1e-3, 1e-4, warmup=10, total=100) for s in range(101)]
    assert lrs[0] < lrs[5] < lrs[9] < 1e-3 and lrs[10] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[100] == pytest.approx(1e-4)


def test_recipes_count_optimiser_steps_and_old_runs_still_read():
    r = load_recipe("char-gpt-kjv", ["train.max_iters=12", "train.eval_interval=4"])
    assert (r.train.max_iters, r.train.eval_interval, r.train.periods) == (12, 4, 3)
    with pytest.raises(GenlabError, match="train.max_iters=10 must be a multiple of train.eval_interval=4"):
        load_recipe("char-gpt-kjv", ["train.max_iters=10", "train.eval_interval=4"])
    with pytest.raises(GenlabError, match="unknown recipe key 'train.epochs'"):
        load_recipe("char-gpt-kjv", ["train.epochs=3"])  # the recipe already counts in max_iters
    # A run made before the rename stored `train.epochs` periods of `eval_interval` steps: still readable.
    old = genlab.TASKS["lm"].recipe({"task": "lm", "train": {"epochs": 3, "eval_interval": 4}})
    assert (old.train.max_iters, old.train.periods) == (12, 3)


@pytest.mark.parametrize("interrupt", ["one press", "two presses", "mid-step"])
def test_ctrl_c_then_resume_equals_uninterrupted(tmp_path, tiny_text, monkeypatch, interrupt):
    """One Ctrl-C stops after the step it is in and saves that step. A second one, or a KeyboardInterrupt
    that stops a step half done, keeps the last checkpoint (the end of the first evaluation period).
    Either way, resuming ends with the uninterrupted run's weights, validation and text samples."""
    overrides = tiny_lm(tiny_text)
    train(tmp_path / "full", overrides)
    real_step = LMTraining.train_step

    def interrupted_step(self, indices, step):
        if step != 5:  # 5: in the middle of the second evaluation period
            return real_step(self, indices, step)
        if interrupt == "mid-step":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends; the step still finishes
        metrics = real_step(self, indices, step)  # the optimiser has stepped; the loop has not counted it yet
        if interrupt == "two presses":
            os.kill(os.getpid(), signal.SIGINT)
        return metrics

    monkeypatch.setattr(LMTraining, "train_step", interrupted_step)
    one_press = interrupt == "one press"
    expected = "interrupted at step 6; resumable checkpoint saved" if one_press else "interrupted twice"
    with pytest.raises(Interrupted, match=expected):
        train(tmp_path / "cut", overrides)
    monkeypatch.setattr(LMTraining, "train_step", real_step)
    saved_at = 6 if one_press else 4
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last" / "state.pt", weights_only=True)["step"] == saved_at
    report = train(tmp_path / "cut", [], resume=True)
    assert report["cost"]["steps"] == 12 and report["cost"]["steps_this_session"] == 12 - saved_at
    assert report["cost"]["periods"] == 3
    full, cut = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert full.keys() == cut.keys() and all(torch.equal(full[k], cut[k]) for k in full)
    full_report = json.loads((tmp_path / "full" / "report.json").read_text())
    assert report["validation"] == full_report["validation"]
    samples = sorted(p.name for p in (tmp_path / "cut" / "samples").iterdir())
    assert samples == ["step_000004.txt", "step_000008.txt", "step_000012.txt"]
    for name in samples:  # the same text sample after each evaluation, interrupted or not
        assert (tmp_path / "cut" / "samples" / name).read_text() == (tmp_path / "full" / "samples" / name).read_text()


def test_validation_keeps_the_best_checkpoint(tmp_path, tiny_text):
    report = train(tmp_path / "run", tiny_lm(tiny_text))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evaluations = [r for r in rows if "val/loss" in r]
    assert [r["step"] for r in evaluations] == [4, 8, 12]
    assert report["validation"]["step"] == 12 and report["validation"]["loss"] == evaluations[-1]["val/loss"]
    assert report["validation"]["best_loss"] == min(r["val/loss"] for r in evaluations)
    best_step = min(evaluations, key=lambda r: r["val/loss"])["step"]
    assert torch.load(tmp_path / "run" / "checkpoints" / "best" / "state.pt", weights_only=True)["step"] == best_step


def test_grad_accumulation_matches_one_big_batch(tmp_path, tiny_text):
    for accum in (1, 2):
        overrides = tiny_lm(tiny_text, **{"train.grad_accum": accum, "model.dropout": 0.0, "train.max_iters": 4})
        assert train(tmp_path / f"a{accum}", overrides)["cost"]["steps"] == 4
    one, two = weights(tmp_path / "a1"), weights(tmp_path / "a2")
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)


def test_masked_lm_trains_and_writes_its_run(tmp_path, tiny_text):
    overrides = tiny_lm(tiny_text, **{"model.objective": "masked", "train.reg_lambda": 1e-4})
    report = train(tmp_path / "bert", overrides)
    run = tmp_path / "bert"
    assert report["validation"]["perplexity"] > 1 and report["cost"]["steps"] == 12
    assert np.memmap(run / "train.bin", dtype=np.uint16, mode="r").size > 15_000
    assert "filled in:" in (run / "samples" / "step_000012.txt").read_text()
    # genlab's BERT is the original post-LN layout, so it exports to RUN/model/ like a GPT does.
    model, tokenizer = load_lm(RunDir(run))
    assert not model.config.causal
    exported = load_hf_bert(run / "model")
    ids = torch.tensor([tokenizer.encode("the light")])
    torch.testing.assert_close(exported(ids).logits, model(ids).logits)
    assert (run / "model" / "tokenizer.json").read_text() == (run / "tokenizer.json").read_text()
    with pytest.raises(GenlabError, match="needs a causal"):  # a masked model scores text but writes none
        genlab.load(run).generate("the light", max_tokens=4)


@pytest.mark.parametrize("objective", ["causal", "masked"])
def test_models_without_biases_are_refused_before_tokenizing(tmp_path, tiny_text, objective):
    overrides = tiny_lm(tiny_text, **{"model.objective": objective, "model.bias": False})
    with pytest.raises(GenlabError, match="model.bias=false: every evaluation exports"):
        train(tmp_path / "run", overrides)
    assert not (tmp_path / "run" / "train.bin").exists()


def test_gpt_export_loads_back_with_the_same_logits(tmp_path, tiny_text):
    train(tmp_path / "run", tiny_lm(tiny_text))
    model, tokenizer = load_lm(RunDir(tmp_path / "run"))
    exported = load_gpt2(tmp_path / "run" / "model")
    ids = torch.tensor([tokenizer.encode("the light")])
    torch.testing.assert_close(exported(ids).logits, model(ids).logits)
    exported_tokenizer = (tmp_path / "run" / "model" / "tokenizer.json").read_text()
    assert exported_tokenizer == (tmp_path / "run" / "tokenizer.json").read_text()


# CLI ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, tiny_text):
    run = tmp_path_factory.mktemp("lm-runs") / "gpt"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_OFFLINE", "1")
        # key=value overrides may come after the options too
        assert main(["train", "char-gpt-kjv", "--out", str(run), *tiny_lm(tiny_text)]) == 0
    return run


def test_cli_eval_writes_test_perplexity(cli_run, capsys):
    assert main(["eval", str(cli_run)]) == 0
    test = json.loads((cli_run / "report.json").read_text())["test"]
    assert test["perplexity"] == pytest.approx(np.exp(test["loss"])) and test["tokens"] > 16
    assert '"perplexity"' in capsys.readouterr().out


def test_cli_generate_streams_deterministic_text(cli_run, capsys):
    args = ["generate", str(cli_run), "--prompt", "the light", "--max-tokens", "30", "--seed", "7"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.startswith("the light") and len(first.strip()) > len("the light")
    assert main(args) == 0
    assert capsys.readouterr().out == first
    assert main([*args[:-1], "8"]) == 0
    assert capsys.readouterr().out != first
    # The Python API gives the continuation alone, whole or streamed, the same text as the CLI's.
    handle = genlab.load(cli_run)
    continuation = handle.generate("the light", max_tokens=30, seed=7)
    assert isinstance(continuation, str) and first == "the light" + continuation + "\n"
    assert "".join(handle.generate("the light", max_tokens=30, seed=7, stream=True)) == continuation
    assert handle.task == "lm" and handle.recipe.train.max_iters == 12
    assert handle.report["cost"]["steps"] == 12 and handle.report["cost"]["periods"] == 3


def test_cli_generate_from_the_best_checkpoint(cli_run, capsys):
    args = ["generate", str(cli_run), "--prompt", "the", "--max-tokens", "20", "--temperature", "0"]
    assert main([*args, "--checkpoint", "best"]) == 0
    best = capsys.readouterr().out
    assert best.startswith("the") and len(best.strip()) > len("the")
    assert best == "the" + genlab.load(cli_run, checkpoint="best").generate("the", max_tokens=20, temperature=0) + "\n"


def test_cli_generate_stops_before_the_stop_string(cli_run, capsys):
    args = ["generate", str(cli_run), "--prompt", "the", "--max-tokens", "60", "--temperature", "0"]
    assert main(args) == 0
    greedy = capsys.readouterr().out.rstrip("\n")
    stop = greedy[4:6]  # two characters the greedy continuation is known to produce
    assert main([*args, "--stop", stop]) == 0
    assert capsys.readouterr().out.rstrip("\n") == greedy[: greedy.index(stop, 3)]


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--prompt", ""], "the prompt is empty"),
        (["--prompt", "x" * 17], "longer than the model's context (16)"),
        ([], "needs a prompt (--prompt TEXT)"),
        (["--prompt", "the", "--top-p", "1.5"], "top_p must be in (0, 1]"),
        (["--prompt", "the", "--presence-penalty", "2.5"], "presence_penalty must be in [-2, 2], got 2.5"),
        (["--prompt", "the", "--n", "4"], "a 'lm' run does not take n for generate"),
        (["--prompt", "the", "--label", "1"], "a 'lm' run does not take label for generate"),
    ],
)
def test_cli_generate_bad_input(cli_run, capsys, extra, expected):
    assert main(["generate", str(cli_run), *extra]) == 2
    one_error_line(capsys, expected)
    assert capsys.readouterr().out == ""


def test_cli_unknown_tokenizer(tmp_path, tiny_text, capsys):
    assert (
        main(["train", "char-gpt-kjv", *tiny_lm(tiny_text), "data.tokenizer=wordpiece", "--out", str(tmp_path / "r")])
        == 2
    )
    one_error_line(capsys, "data.tokenizer must be char or bpe")
    assert not (tmp_path / "r").exists()


def test_cli_checkpoint_with_wrong_tensors(cli_run, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(cli_run, broken)
    path = broken / "checkpoints" / "last" / "model.safetensors"
    tensors = load_file(str(path))
    tensors["tok_emb.weight"] = tensors["tok_emb.weight"][:, :8].contiguous()
    save_file(tensors, str(path))
    assert main(["generate", str(broken), "--prompt", "the"]) == 2
    one_error_line(capsys, "tensor 'tok_emb.weight' has shape")
    tensors = load_file(str(cli_run / "checkpoints" / "last" / "model.safetensors"))
    del tensors["blocks.0.mlp.fc.bias"]
    save_file(tensors, str(path))
    assert main(["eval", str(broken)]) == 2
    one_error_line(capsys, "missing tensor 'blocks.0.mlp.fc.bias'")
    (broken / "tokenizer.json").write_text("{}")
    shutil.copy(cli_run / "checkpoints" / "last" / "model.safetensors", path)
    assert main(["generate", str(broken), "--prompt", "the"]) == 2
    one_error_line(capsys, "neither a genlab char tokenizer nor a Hugging Face tokenizer.json")


def test_plot_script_draws_the_loss_curves(cli_run, tmp_path):
    script = Path(__file__).resolve().parent.parent / "scripts" / "plot_lm_curve.py"
    out = tmp_path / "img" / "curve.png"
    done = subprocess.run([sys.executable, str(script), str(cli_run), str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gan = tmp_path / "gan"
    gan.mkdir()
    (gan / "config.yaml").write_text("name: essay\ntask: gan\n")
    done = subprocess.run(
        [sys.executable, str(script), str(gan), str(tmp_path / "gan.png")], capture_output=True, text=True
    )
    assert done.returncode == 1 and "is a 'gan' run, not a language-model" in done.stderr
