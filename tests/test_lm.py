"""Language-model runs on a tiny text file: resume, accumulation, masked LM, the CLI end to
end (train -> eval -> generate), the Hugging Face export, and bad input (one line, exit 2)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from genlab.cli import main
from genlab.config import load_recipe
from genlab.errors import GenlabError
from genlab.models.hf_io import load_gpt2, load_hf_bert
from genlab.pipeline import train
from genlab.training.lm import LMTask, cosine_lr

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
        "data.corpus": str(text_path), "data.block_size": 16, "data.batch_size": 4,
        "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16, "model.dropout": 0.1,
        "train.epochs": 3, "train.eval_interval": 4, "train.warmup_iters": 2, "train.progress": False,
        "eval.eval_iters": 2, **extra,
    }
    return [f"{k}={v}" for k, v in settings.items()]


def weights(run_path, checkpoint: str = "last") -> dict[str, torch.Tensor]:
    return load_file(str(run_path / "checkpoints" / checkpoint / "model.safetensors"))


def test_char_gpt_kjv_recipe_is_the_issues_setting():
    r = load_recipe("char-gpt-kjv")
    assert (r.data.corpus, r.data.tokenizer, r.data.block_size, r.data.batch_size) == ("bible-kjv", "char", 64, 12)
    assert (r.model.n_layer, r.model.n_head, r.model.n_embd, r.model.dropout, r.model.objective) == (
        4, 4, 128, 0.0, "causal")
    assert (r.train.max_iters, r.train.lr, r.train.min_lr, r.train.betas[1]) == (2000, 1e-3, 1e-4, 0.99)


@pytest.mark.parametrize("override, message", [
    ("data.tokenizer=wordpiece", "data.tokenizer must be char or bpe"),
    ("model.objective=denoise", "model.objective must be causal or masked"),
    ("data.corpus=[]", "data.corpus must name at least one corpus"),
    ("train.min_lr=1.0", "0 <= min_lr <= lr"),
    ("train.r1_gamma=1", "unknown recipe key 'train.r1_gamma'"),
])
def test_bad_lm_recipes_fail_with_one_clear_message(override, message):
    with pytest.raises(GenlabError, match=message):
        load_recipe("char-gpt-kjv", [override])


def test_schedule_warms_up_then_decays_to_min_lr():
    lrs = [cosine_lr(s, 1e-3, 1e-4, warmup=10, total=100) for s in range(101)]
    assert lrs[0] < lrs[5] < lrs[9] < 1e-3 and lrs[10] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[100] == pytest.approx(1e-4)


def test_ctrl_c_then_resume_equals_uninterrupted(tmp_path, tiny_text, monkeypatch):
    recipe = load_recipe("char-gpt-kjv", tiny_lm(tiny_text))
    train(recipe, tmp_path / "full")
    real_step = LMTask.train_step

    def interrupted_step(self, indices, step):
        if step == 6:  # in the middle of the second evaluation period
            raise KeyboardInterrupt
        return real_step(self, indices, step)

    monkeypatch.setattr(LMTask, "train_step", interrupted_step)
    with pytest.raises(GenlabError, match="interrupted at step 6"):
        train(recipe, tmp_path / "cut")
    monkeypatch.setattr(LMTask, "train_step", real_step)
    report = train(recipe, tmp_path / "cut", resume=True)
    assert report["cost"]["steps"] == 12 and report["cost"]["steps_this_session"] == 6
    full, cut = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert all(torch.equal(full[k], cut[k]) for k in full)
    full_report = json.loads((tmp_path / "full" / "report.json").read_text())
    assert report["validation"] == full_report["validation"]


def test_grad_accumulation_matches_one_big_batch(tmp_path, tiny_text):
    for accum in (1, 2):
        overrides = tiny_lm(tiny_text, **{"train.grad_accum": accum, "model.dropout": 0.0, "train.epochs": 1})
        train(load_recipe("char-gpt-kjv", overrides), tmp_path / f"a{accum}")
    one, two = weights(tmp_path / "a1"), weights(tmp_path / "a2")
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)


def test_masked_lm_trains_and_writes_its_run(tmp_path, tiny_text):
    overrides = tiny_lm(tiny_text, **{"model.objective": "masked", "train.reg_lambda": 1e-4})
    report = train(load_recipe("char-gpt-kjv", overrides), tmp_path / "bert")
    run = tmp_path / "bert"
    assert report["validation"]["perplexity"] > 1 and report["cost"]["steps"] == 12
    assert np.memmap(run / "train.bin", dtype=np.uint16, mode="r").size > 15_000
    assert "filled in:" in (run / "samples" / "epoch_0003.txt").read_text()
    # genlab's BERT is the original post-LN layout, so it exports to RUN/model/ like a GPT does.
    from genlab.text_runs import load_lm

    model, tokenizer, _ = load_lm(run)
    exported = load_hf_bert(run / "model")
    ids = torch.tensor([tokenizer.encode("the light")])
    torch.testing.assert_close(exported(ids).logits, model(ids).logits)
    assert (run / "model" / "tokenizer.json").read_text() == (run / "tokenizer.json").read_text()


@pytest.mark.parametrize("objective", ["causal", "masked"])
def test_models_without_biases_are_refused_before_tokenizing(tmp_path, tiny_text, objective):
    overrides = tiny_lm(tiny_text, **{"model.objective": objective, "model.bias": False})
    with pytest.raises(GenlabError, match="model.bias=false: every evaluation exports"):
        train(load_recipe("char-gpt-kjv", overrides), tmp_path / "run")
    assert not (tmp_path / "run" / "train.bin").exists()


def test_gpt_export_loads_back_with_the_same_logits(tmp_path, tiny_text):
    train(load_recipe("char-gpt-kjv", tiny_lm(tiny_text)), tmp_path / "run")
    from genlab.text_runs import load_lm

    model, tokenizer, _ = load_lm(tmp_path / "run")
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
        assert main(["train", "char-gpt-kjv", *tiny_lm(tiny_text), "--out", str(run)]) == 0
    return run


def one_error_line(capsys, expected: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genlab: error:") and expected in err[0], err


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


def test_cli_generate_stops_before_the_stop_string(cli_run, capsys):
    args = ["generate", str(cli_run), "--prompt", "the", "--max-tokens", "60", "--temperature", "0"]
    assert main(args) == 0
    greedy = capsys.readouterr().out.rstrip("\n")
    stop = greedy[4:6]  # two characters the greedy continuation is known to produce
    assert main([*args, "--stop", stop]) == 0
    assert capsys.readouterr().out.rstrip("\n") == greedy[:greedy.index(stop, 3)]


@pytest.mark.parametrize("extra, expected", [
    (["--prompt", ""], "the prompt is empty"),
    (["--prompt", "x" * 17], "longer than the model's context (16)"),
    ([], "needs --prompt"),
    (["--prompt", "the", "--top-p", "1.5"], "top_p must be in (0, 1]"),
])
def test_cli_generate_bad_input(cli_run, capsys, extra, expected):
    assert main(["generate", str(cli_run), *extra]) == 2
    one_error_line(capsys, expected)
    assert capsys.readouterr().out == ""


def test_cli_unknown_tokenizer(tmp_path, tiny_text, capsys):
    assert main(["train", "char-gpt-kjv", *tiny_lm(tiny_text), "data.tokenizer=wordpiece",
                 "--out", str(tmp_path / "r")]) == 2
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
    one_error_line(capsys, "tensor 'tok_emb.weight' is missing or has the wrong shape")
    del tensors["blocks.0.mlp.fc.bias"]
    save_file(tensors, str(path))
    assert main(["eval", str(broken)]) == 2
    one_error_line(capsys, "is missing or has the wrong shape")
    (broken / "tokenizer.json").write_text("{}")
    shutil.copy(cli_run / "checkpoints" / "last" / "model.safetensors", path)
    assert main(["generate", str(broken), "--prompt", "the"]) == 2
    one_error_line(capsys, "neither a genlab char tokenizer nor a Hugging Face tokenizer.json")
