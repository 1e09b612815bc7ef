"""Fine-tuning groundwork: LoRA, bottleneck adapters, freezing lower layers, and the text metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from genlab.errors import GenlabError
from genlab.evaluation.text_metrics import accuracy, bleu, chrf, macro_f1
from genlab.io.weights import read_tensors
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.peft.adapters import add_adapters, freeze_lower_layers
from genlab.peft.lora import LoraConfig, LoraLinear, apply_lora, merge_lora, trainable_parameter_count
from genlab.peft.methods import DELTA_WEIGHTS, MethodConfig, apply_method, load_delta, save_delta, trainable_tensors
from genlab.tasks.lm.process import causal_lm_loss

IDX = torch.randint(40, (3, 12), generator=torch.Generator().manual_seed(1))


def tiny(seed: int = 0, causal: bool = True) -> Transformer:
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=40, block_size=16, n_layer=3, n_head=2, n_embd=16, causal=causal)
    return Transformer(cfg)


def train_steps(model: Transformer, steps: int = 3) -> None:
    """A few AdamW steps with weight decay, so a frozen parameter that still got updates would show."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1)
    for _ in range(steps):
        loss = causal_lm_loss(model(IDX).logits, IDX)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def lora_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA matrices of a model (every parameter named `...lora_A` / `...lora_B`), detached."""
    return {name: p.detach() for name, p in model.named_parameters() if "lora_" in name}


def adapter_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The bottleneck adapters' parameters (`blocks.<i>.<attn|mlp>.adapter.<down|up>.<weight|bias>`)."""
    return {name: p.detach() for name, p in model.named_parameters() if ".adapter." in name}


def randomize_lora_b(model: Transformer) -> None:
    """B starts at zero; a nonzero B makes merge and save/load tests able to fail."""
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, t in lora_tensors(model).items():
            if name.endswith("lora_B"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)


# ---------------------------------------------------------------------------------------------- LoRA


def test_fresh_lora_changes_nothing_and_only_lora_trains():
    model = tiny().eval()
    with torch.no_grad():
        before = model(IDX).logits
    cfg = LoraConfig(rank=4, alpha=8, target_modules=["attn.qkv", "mlp.fc"])
    apply_lora(model, cfg)
    with torch.no_grad():
        assert torch.equal(model(IDX).logits, before)  # B is zero-initialised
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {f"blocks.{i}.{m}.lora_{ab}" for i in range(3) for m in ("attn.qkv", "mlp.fc") for ab in "AB"}
    assert trainable == expected
    # qkv: 16 -> 48, fc: 16 -> 64; each adds r * (in + out) parameters
    assert trainable_parameter_count(model) == 3 * 4 * ((16 + 48) + (16 + 64))
    # Base parameter names are unchanged, so base checkpoints still line up.
    assert "blocks.0.attn.qkv.weight" in dict(model.named_parameters())


def test_merged_lora_equals_unmerged():
    model = tiny().double().eval()
    apply_lora(model, LoraConfig(rank=4, alpha=8, target_modules=["attn.qkv", "attn.proj"]))
    randomize_lora_b(model)
    layer = model.blocks[1].attn.qkv
    assert isinstance(layer, LoraLinear)
    w0 = layer.weight.detach().clone()
    with torch.no_grad():
        unmerged = model(IDX).logits
        merge_lora(model)
        merged = model(IDX).logits
    expected_w = w0 + layer.lora_B.detach() @ layer.lora_A.detach() * (8 / 4)
    assert (layer.weight - expected_w).abs().max().item() <= 1e-6
    assert (merged - unmerged).abs().max().item() <= 1e-6
    merge_lora(model)  # merging twice must not add B A a second time
    assert (layer.weight - expected_w).abs().max().item() <= 1e-6
    with torch.no_grad():
        assert (model(IDX).logits - unmerged).abs().max().item() <= 1e-6


def test_lora_training_leaves_base_bit_identical():
    model = tiny()
    apply_lora(model, LoraConfig(rank=2, alpha=4, dropout=0.1, target_modules=["qkv"]))
    lora = set(lora_tensors(model))
    assert lora == set(trainable_tensors(model))  # the LoRA matrices are exactly what trains
    base = {n: t.clone() for n, t in model.state_dict().items() if n not in lora}
    lora_before = {n: t.clone() for n, t in lora_tensors(model).items()}
    train_steps(model)
    assert all(torch.equal(t, base[n]) for n, t in model.state_dict().items() if n not in lora)
    assert all(not torch.equal(t, lora_before[n]) for n, t in lora_tensors(model).items())


def test_lora_delta_save_load_round_trip(tmp_path: Path):
    cfg = LoraConfig(rank=4, alpha=8, target_modules=["attn.qkv"])
    model = apply_lora(tiny(), cfg)
    train_steps(model)
    with torch.no_grad():
        expected = model(IDX).logits
    save_delta(model, tmp_path / "adapter", {"note": "round trip"})
    # The delta holds the LoRA matrices and nothing else: the base is rebuilt, not shipped.
    assert read_tensors(tmp_path / "adapter" / DELTA_WEIGHTS).keys() == lora_tensors(model).keys()
    fresh = apply_lora(tiny(), cfg)  # fresh A matrices (random) and B (zero): the delta must replace both
    with torch.no_grad():
        assert not torch.equal(fresh.eval()(IDX).logits, expected)
    meta = load_delta(fresh, tmp_path / "adapter")
    assert meta["note"] == "round trip"
    assert lora_tensors(fresh).keys() == lora_tensors(model).keys()
    with torch.no_grad():
        assert torch.equal(fresh.eval()(IDX).logits, expected)


def test_lora_delta_refuses_another_base(tmp_path: Path):
    cfg = LoraConfig(rank=2, alpha=2, target_modules=["attn.qkv"])
    model = apply_lora(tiny(), cfg)
    save_delta(model, tmp_path / "delta", {})
    with pytest.raises(GenlabError, match="different base model"):
        load_delta(apply_lora(tiny(seed=1), cfg), tmp_path / "delta")
    # A model whose LoRA is merged has another base: its delta cannot go back on the original one.
    randomize_lora_b(model)
    merge_lora(model)
    save_delta(model, tmp_path / "merged", {})
    with pytest.raises(GenlabError, match="different base model"):
        load_delta(apply_lora(tiny(), cfg), tmp_path / "merged")
    # The same base with LoRA of another rank: one line naming the mis-shaped tensor.
    shape_error = r"tensor 'blocks\.0\.attn\.qkv\.lora_A' has shape \(2, 16\), expected \(3, 16\)"
    with pytest.raises(GenlabError, match=shape_error):
        load_delta(apply_lora(tiny(), LoraConfig(rank=3, alpha=2, target_modules=["attn.qkv"])), tmp_path / "delta")


def test_unknown_lora_target_is_named_with_the_choices():
    with pytest.raises(GenlabError, match=r"'attn\.qkvv'.*available: attn\.proj, attn\.qkv, mlp\.fc, mlp\.proj"):
        apply_lora(tiny(), LoraConfig(target_modules=["attn.qkv", "attn.qkvv"]))
    with pytest.raises(GenlabError, match="rank"):
        LoraConfig(rank=0)


# ------------------------------------------------------------------------------------ adapters, freezing


@pytest.mark.parametrize("causal", [True, False])
def test_fresh_adapters_change_nothing_and_train(causal: bool):
    model = tiny(causal=causal).eval()
    with torch.no_grad():
        before = model(IDX).logits
    add_adapters(model, bottleneck=4)
    with torch.no_grad():
        assert torch.equal(model(IDX).logits, before)  # the up-projection starts at zero
    assert len(adapter_tensors(model)) == 3 * 2 * 4  # 3 blocks x (attn, mlp) x (down, up) x (weight, bias)
    modules = dict(model.named_modules())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    layer_norms = {n for n in trainable if isinstance(modules[n.rpartition(".")[0]], torch.nn.LayerNorm)}
    assert trainable - layer_norms == set(adapter_tensors(model))  # Houlsby: adapters and LayerNorms
    assert layer_norms
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    train_steps(model)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    with torch.no_grad():
        assert not torch.allclose(model(IDX).logits, before)


def test_adapters_train_the_norms_of_a_modern_model_too():
    torch.manual_seed(0)
    cfg = TransformerConfig(
        vocab_size=40,
        block_size=16,
        n_layer=2,
        n_head=2,
        n_embd=16,
        positions="rotary",
        norm="rmsnorm",
        activation="swiglu",
    )
    model = add_adapters(Transformer(cfg), bottleneck=4)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.RMSNorm)]
    assert len(norms) == 2 * 2 + 1  # two per block and the final one
    assert all(p.requires_grad for m in norms for p in m.parameters())


def test_adapters_keep_the_kv_cache_consistent():
    model = add_adapters(tiny(), bottleneck=4)
    train_steps(model)  # nonzero adapters
    with torch.no_grad():
        full = model(IDX).logits
        first = model(IDX[:, :8], use_cache=True)
        rest = model(IDX[:, 8:], kv_cache=first.kv_cache).logits
    assert torch.allclose(torch.cat([first.logits, rest], dim=1), full, atol=1e-5)


def test_adapter_method_delta_round_trip_keeps_the_base(tmp_path: Path):
    """genlab's adapter method (LayerNorms frozen) trains the adapters only; its delta restores them."""
    method = MethodConfig(name="adapter", bottleneck=4)
    model = tiny()
    apply_method(model, model, method)
    assert set(trainable_tensors(model)) == set(adapter_tensors(model))
    base = {n: t.clone() for n, t in model.state_dict().items() if ".adapter." not in n}
    train_steps(model)
    assert all(torch.equal(t, base[n]) for n, t in model.state_dict().items() if n in base)
    with torch.no_grad():
        expected = model(IDX).logits
    save_delta(model, tmp_path / "adapter", {})
    fresh = tiny()
    apply_method(fresh, fresh, method)
    load_delta(fresh, tmp_path / "adapter")
    with torch.no_grad():
        assert torch.equal(fresh.eval()(IDX).logits, expected)


def test_freeze_lower_layers_trains_only_the_top():
    model = freeze_lower_layers(tiny(), k_top=1)
    trainable = {
        n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("blocks") else "")
        for n, p in model.named_parameters()
        if p.requires_grad
    }
    assert trainable == {"blocks.2", "ln_f"}
    before = {n: p.clone() for n, p in model.named_parameters()}
    train_steps(model)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) == (not n.startswith(("blocks.2.", "ln_f."))), n
    with pytest.raises(GenlabError, match="k_top"):
        freeze_lower_layers(model, k_top=4)


# ---------------------------------------------------------------------------------------------- metrics


def test_accuracy_and_macro_f1_by_hand():
    y_true, y_pred = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    # class 0: P 1/2, R 1/2 -> F1 1/2; class 1: P 2/3, R 1 -> F1 4/5; class 2: never predicted -> 0
    assert macro_f1(y_true, y_pred) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert accuracy(y_true, y_pred) == pytest.approx(0.6)
    assert macro_f1(["a", "b"], ["a", "b"]) == 1.0
    with pytest.raises(GenlabError, match="empty"):
        macro_f1([], [])
    with pytest.raises(GenlabError, match="2 predictions for 3 labels"):
        accuracy([1, 2, 3], [1, 2])


def test_bleu_and_chrf_by_hand():
    perfect = bleu(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert perfect["score"] == pytest.approx(100.0)
    assert perfect["signature"].startswith("nrefs:1|") and "tok:13a" in perfect["signature"]
    # n-gram precisions 4/5, 3/4, 2/3, 1/2 and equal lengths (no brevity penalty)
    assert bleu(["a b c d e"], ["a b c d f"])["score"] == pytest.approx(100 * 0.2**0.25, abs=1e-3)
    # all precisions 1, hypothesis 4 words against 6: brevity penalty exp(1 - 6/4)
    assert bleu(["a b c d"], ["a b c d e f"])["score"] == pytest.approx(100 * math.exp(-0.5), abs=1e-3)
    # two references per hypothesis: the matching one counts
    assert bleu(["a b c d"], [["w x y z", "a b c d"]])["score"] == pytest.approx(100.0)
    assert chrf(["in the beginning"], ["in the beginning"])["score"] == pytest.approx(100.0)
    assert chrf(["in the beginning"], ["xyz"])["score"] < 10
    with pytest.raises(GenlabError, match="empty"):
        bleu([], [])
    with pytest.raises(GenlabError, match="1 hypotheses for 2 references"):
        chrf(["a"], ["a", "b"])
