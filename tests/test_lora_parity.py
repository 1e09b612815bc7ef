"""genlab's LoRA against peft's on the same tiny GPT, exported to the GPT-2 layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genlab.interop.hf import save_gpt2
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.peft.lora import LoraConfig, apply_lora, lora_layers, trainable_parameter_count
from genlab.tasks.lm.process import causal_lm_loss

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")


def test_lora_matches_peft_outputs_and_gradients(tmp_path: Path):
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=61, block_size=32, n_layer=2, n_head=4, n_embd=32, activation="gelu_new")
    ours = Transformer(cfg).eval()
    save_gpt2(ours, tmp_path)
    base = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path)).eval()
    # GPT-2's c_attn is a Conv1D holding its weight as (in, out); fan_in_fan_out tells peft so. peft's
    # A and B are ordinary Linear weights, (r, in) and (out, r), the same orientation as genlab's.
    theirs = peft.get_peft_model(
        base, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["c_attn"], fan_in_fan_out=True)
    ).eval()
    apply_lora(ours, LoraConfig(rank=4, alpha=8, target_modules=["attn.qkv"]))

    gen = torch.Generator().manual_seed(3)
    peft_layers = {f"blocks.{i}.attn.qkv": h.attn.c_attn for i, h in enumerate(theirs.base_model.model.transformer.h)}
    with torch.no_grad():  # nonzero A and B, so both outputs and both gradients are exercised
        for name, layer in lora_layers(ours).items():
            a, b = torch.randn(layer.lora_A.shape, generator=gen), torch.randn(layer.lora_B.shape, generator=gen) * 0.1
            layer.lora_A.copy_(a)
            layer.lora_B.copy_(b)
            peft_layers[name].lora_A["default"].weight.copy_(a)
            peft_layers[name].lora_B["default"].weight.copy_(b)
    assert trainable_parameter_count(ours) == sum(p.numel() for p in theirs.parameters() if p.requires_grad)

    idx = torch.randint(61, (2, 20), generator=gen)
    our_logits, their_logits = ours(idx).logits, theirs(input_ids=idx).logits
    assert (our_logits - their_logits).abs().max().item() <= 1e-5
    causal_lm_loss(our_logits, idx).backward()
    causal_lm_loss(their_logits, idx).backward()
    for name, layer in lora_layers(ours).items():
        ref = peft_layers[name]
        assert (layer.lora_A.grad - ref.lora_A["default"].weight.grad).abs().max().item() <= 1e-5, name
        assert (layer.lora_B.grad - ref.lora_B["default"].weight.grad).abs().max().item() <= 1e-5, name
        assert layer.lora_A.grad.abs().max().item() > 1e-4  # a vacuous zero gradient would also "match"
