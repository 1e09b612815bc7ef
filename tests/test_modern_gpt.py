"""The modern small-GPT options of genlab.models.transformer (rotary, RMSNorm, QK-norm, ReLU²/SwiGLU,
untied head, zero-init, soft-cap): validated, equal across cached / uncached / batched decoding, trainable
from a recipe with Muon, and exported in the Llama layout that transformers loads with the same logits."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from genlab.cli import main
from genlab.core.run import RunDir
from genlab.errors import GenlabError
from genlab.interop.hf import load_llama, save_gpt2, save_llama
from genlab.models.batching import ContinuousBatch, Sequence
from genlab.models.generation import generate
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.lm.handle import load_lm
from tests.conftest import one_error_line
from tests.test_batching import alone, requests
from tests.test_lm import tiny_lm, tiny_text, train  # noqa: F401  (tiny_text is a fixture)

LLAMA = dict(positions="rotary", norm="rmsnorm", activation="swiglu")
EVERYTHING = dict(
    positions="rotary",
    norm="rmsnorm",
    qk_norm=True,
    activation="relu2",
    tie_head=False,
    zero_init=True,
    logit_softcap=20.0,
    bias=False,
)


def tiny(**options) -> Transformer:
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=50, block_size=32, n_layer=2, n_head=2, n_embd=32, **options))
    with torch.no_grad():  # zero-initialised projections would hide what the options do
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize(
    "options, wrong",
    [
        ({"positions": "alibi"}, "unknown positions 'alibi'"),
        ({"norm": "batchnorm"}, "unknown norm 'batchnorm'"),
        ({"activation": "swish"}, "unknown activation 'swish'"),
        ({"positions": "rotary", "n_embd": 30, "n_head": 2}, "even head size"),
        ({"rope_theta": 0.5}, "rope_theta must be"),
        ({"logit_softcap": -1.0}, "logit_softcap must be"),
        ({"logit_softcap": float("nan")}, "logit_softcap must be"),
        ({"causal": False, "tie_head": False}, "tie_head=false needs a causal model"),
        ({"causal": False, "pre_ln": False, "norm": "rmsnorm"}, r"post-LN \(BERT\) layout keeps"),
    ],
)
def test_bad_options_are_one_line_errors(options, wrong):
    with pytest.raises(GenlabError, match=wrong) as info:
        TransformerConfig(**options)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.positions=alibi", "model.positions must be one of learned, rotary"),
        ("model.activation=gelu", "model.activation must be one of gelu_new, relu2, swiglu"),
        ("model.logit_softcap=-2", "model.logit_softcap"),
        ("train.optimizer=sgd", "train.optimizer must be adamw or muon"),
        ("train.muon_lr=0", "train.muon_lr must be"),
        ("model.qk_norm=true", "none fits this one (Llama needs other values than qk_norm=True"),
    ],
)
def test_bad_recipe_options_exit_2_with_one_line(override, expected, tmp_path, capsys, tiny_text):  # noqa: F811
    extra = ["model.positions=rotary", "model.norm=rmsnorm", "model.activation=swiglu"] if "qk_norm" in override else []
    argv = ["train", "char-gpt-kjv", *tiny_lm(tiny_text), *extra, override, "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    one_error_line(capsys, expected)
    assert not (tmp_path / "run" / "train.bin").exists()


def test_masked_models_refuse_the_causal_options(tmp_path, capsys, tiny_text):  # noqa: F811
    argv = [
        "train",
        "char-gpt-kjv",
        *tiny_lm(tiny_text),
        "model.objective=masked",
        "model.positions=rotary",
        "--out",
        str(tmp_path / "run"),
    ]
    assert main(argv) == 2
    one_error_line(capsys, "model.positions is a causal-model option")


@pytest.mark.parametrize("options", [dict(positions="rotary"), LLAMA, EVERYTHING], ids=["rotary", "llama", "all"])
def test_cached_and_uncached_forward_agree(options):
    model = tiny(**options)
    ids = torch.randint(50, (3, 32))
    full = model(ids).logits
    first = model(ids[:, :20], use_cache=True)
    rest = model(ids[:, 20:], kv_cache=first.kv_cache, use_cache=True).logits
    torch.testing.assert_close(torch.cat([first.logits, rest], dim=1), full, atol=1e-5, rtol=1e-5)


def test_rotary_positions_are_relative():
    """A rotary model without a position table sees the same first token wherever its positions start."""
    model = tiny(**LLAMA)
    ids = torch.randint(50, (1, 8))
    shifted = model(ids, position_ids=torch.arange(5, 13)[None]).logits
    torch.testing.assert_close(model(ids).logits, shifted, atol=1e-5, rtol=1e-5)
    assert model.pos_emb is None


@pytest.mark.parametrize("options", [LLAMA, EVERYTHING], ids=["llama", "all"])
def test_generation_with_and_without_cache_and_batched_pick_the_same_tokens(options):
    """Greedy and sampled decoding past the 32-token context, one sequence alone (cached and uncached) and
    twelve in a continuous batch (left-padded rows with their own position_ids)."""
    model = tiny(**options)
    prompt = torch.randint(50, (2, 5))
    for temperature in (0.0, 1.0):
        cached = generate(model, prompt, 45, temperature, seed=3)
        assert cached.equal(generate(model, prompt, 45, temperature, seed=3, use_cache=False))
    specs = requests(12)
    seqs = [Sequence(**r) for r in specs]
    batch = ContinuousBatch(model)
    for seq in seqs:
        batch.add(seq)
        batch.step()
    while len(batch):
        batch.step()
    assert all(seq.tokens == alone(model, r) for seq, r in zip(seqs, specs))


@pytest.mark.parametrize("bias, tie_head", [(False, False), (True, True)])
def test_llama_export_matches_transformers(tmp_path, bias, tie_head):
    transformers = pytest.importorskip("transformers")
    model = tiny(**LLAMA, bias=bias, tie_head=tie_head, n_inner=48)
    save_llama(model, tmp_path)
    theirs = transformers.LlamaForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(50, (2, 32))
    with torch.no_grad():
        assert (model(ids).logits - theirs(ids).logits).abs().max().item() <= 1e-4
    back = load_llama(tmp_path)
    assert back.config == dataclasses.replace(model.config, layer_norm_eps=model.config.layer_norm_eps)
    state = model.state_dict()
    assert back.state_dict().keys() == state.keys()
    assert all(torch.equal(t, state[k]) for k, t in back.state_dict().items())


@pytest.mark.parametrize(
    "options, wrong",
    [
        (dict(LLAMA, qk_norm=True), "qk_norm=True"),
        (dict(LLAMA, logit_softcap=30.0), "logit_softcap=30.0"),
        (dict(LLAMA, activation="relu2"), "activation=relu2"),
    ],
)
def test_llama_export_refuses_other_options(tmp_path, options, wrong):
    with pytest.raises(GenlabError, match=wrong):
        save_llama(tiny(**options), tmp_path)
    with pytest.raises(GenlabError, match="fit the GPT-2 layout"):
        save_gpt2(tiny(**options), tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_modern_recipe_trains_with_muon_and_exports_llama(tmp_path, tiny_text):  # noqa: F811
    transformers = pytest.importorskip("transformers")
    overrides = tiny_lm(
        tiny_text,
        **{
            "model.positions": "rotary",
            "model.norm": "rmsnorm",
            "model.activation": "swiglu",
            "model.bias": False,
            "model.zero_init": True,
            "model.tie_head": False,
            "train.optimizer": "muon",
            "model.dropout": 0.0,
            "train.lr": 0.01,
        },
    )
    report = train(tmp_path / "run", overrides)
    assert report["validation"]["loss"] < math.log(35) - 0.2  # below uniform over the 35 characters
    model, tokenizer = load_lm(RunDir(tmp_path / "run"))
    theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model").eval()
    ids = torch.tensor([tokenizer.encode("the light")])
    with torch.no_grad():
        assert (model(ids).logits - theirs(ids).logits).abs().max().item() <= 1e-4
    resumed = train(tmp_path / "run", [*overrides, "train.max_iters=16"], resume=True)
    assert resumed["cost"]["steps"] == 16  # Muon's state went through the checkpoint and back


def test_a_rotary_model_rolls_its_cache_past_the_context():
    """Past the 32-token context a rotary model reads one token per step (no re-prefill), and the tokens equal
    the uncached sliding-window path's; a model with a position table re-reads its window every half context."""
    for options, prefills in ((LLAMA, 1), ({}, 2)):  # 20 + 12 tokens fill the 32, then the window restarts once
        model = tiny(**options)
        widths = []
        hook = model.register_forward_pre_hook(lambda m, args, widths=widths: widths.append(args[0].size(1)))
        out = generate(model, torch.randint(50, (2, 20)), 25, temperature=0.0)
        hook.remove()
        assert sum(w > 1 for w in widths) == prefills
        assert out.equal(generate(model, out[:, :20], 25, temperature=0.0, use_cache=False))
