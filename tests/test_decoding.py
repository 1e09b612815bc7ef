"""genlab.models.decoding: the module-free one-token step computes exactly what the module forward does,
for every architecture option (and past the context, where a rotary model's cache rolls), and steps aside
for models it cannot mirror (LoRA, adapters, BERT)."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import GenlabError
from genlab.models.decoding import OneTokenDecoder
from genlab.models.generation import generate
from genlab.models.transformer import KVBuffer, Transformer, TransformerConfig
from genlab.peft.adapters import add_adapters
from genlab.peft.lora import LoraConfig, apply_lora
from tests.test_modern_gpt import EVERYTHING, LLAMA, tiny

OPTIONS = {
    "gpt2": {},
    "gelu_new": dict(activation="gelu_new"),
    "relu2": dict(activation="relu2"),
    "swiglu_rmsnorm_learned": dict(activation="swiglu", norm="rmsnorm"),
    "no_bias_untied": dict(bias=False, tie_head=False),
    "rotary": dict(positions="rotary"),
    "llama": LLAMA,
    "qk_norm_softcap": dict(qk_norm=True, logit_softcap=5.0),
    "everything": EVERYTHING,
}


def _prefilled(model: Transformer, prompt: torch.Tensor) -> KVBuffer:
    cache = KVBuffer(model.config, len(prompt))
    model(prompt, kv_cache=cache, use_cache=True)
    return cache


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_decoder_steps_equal_the_module_forward_bit_for_bit(options):
    model = tiny(**options)
    prompt = torch.randint(50, (3, 6))
    by_modules, by_decoder = _prefilled(model, prompt), _prefilled(model, prompt)
    decoder = OneTokenDecoder.of(model)
    assert decoder is not None
    token = prompt[:, -1:]
    with torch.inference_mode():
        for _ in range(10):
            expected = model(token, kv_cache=by_modules, use_cache=True).logits[:, -1]  # (B, V)
            got = decoder(token, by_decoder)
            assert torch.equal(got, expected)
            token = expected.argmax(-1, keepdim=True)
    assert by_decoder.width == by_modules.width == 16
    assert all(torch.equal(a, b) for a, b in zip(by_decoder.kv, by_modules.kv))


@pytest.mark.parametrize("options", [{}, LLAMA], ids=["gpt2", "llama"])
def test_decoder_follows_per_row_positions_and_padding_masks(options):
    """What continuous batching passes: each row's own position and a mask over its real cached tokens."""
    model = tiny(**options)
    prompt = torch.randint(50, (2, 6))
    cache = _prefilled(model, prompt)
    positions = torch.tensor([[6], [3]])  # row 1 was left-padded by 3 tokens
    attention = torch.tensor([[1] * 7, [0, 0, 0, 1, 1, 1, 1]])  # (B, width + 1)
    mask = attention.bool()[:, None, None, :]  # (B, 1, 1, width + 1)
    expected = model(
        prompt[:, -1:],
        attention_mask=attention,
        kv_cache=_prefilled(model, prompt),
        use_cache=True,
        position_ids=positions,
    ).logits[:, -1]
    assert torch.equal(OneTokenDecoder.of(model)(prompt[:, -1:], cache, positions, mask), expected)


ROTARY = {name: options for name, options in OPTIONS.items() if options.get("positions") == "rotary"}


@pytest.mark.parametrize("options", ROTARY.values(), ids=ROTARY.keys())
def test_decoder_steps_past_the_context_equal_the_module_forward(options):
    """A full rotary cache drops its oldest column before each step and positions run on past block_size
    (the sliding window generation.stream decodes with)."""
    model = tiny(**options)
    block = model.config.block_size
    prompt = torch.randint(50, (2, block))
    by_modules, by_decoder = _prefilled(model, prompt), _prefilled(model, prompt)
    decoder = OneTokenDecoder.of(model)
    token = prompt[:, -1:]
    with torch.inference_mode():
        for position in range(block, block + 10):
            by_modules.drop_oldest()
            by_decoder.drop_oldest()
            positions = torch.full((2, 1), position)
            expected = model(token, kv_cache=by_modules, use_cache=True, position_ids=positions).logits[:, -1]
            assert torch.equal(decoder(token, by_decoder, positions), expected)
            token = expected.argmax(-1, keepdim=True)
    assert by_decoder.width == by_modules.width == block
    assert all(torch.equal(a, b) for a, b in zip(by_decoder.kv, by_modules.kv))


def test_models_the_decoder_cannot_mirror_decode_through_their_modules():
    lora = apply_lora(tiny(), LoraConfig(rank=2, target_modules=["attn.qkv"]))
    with torch.no_grad():
        for layer in lora.modules():
            if hasattr(layer, "lora_B"):
                layer.lora_B.normal_()  # an update that changes the logits
    adapted = add_adapters(tiny(), bottleneck=4)
    with torch.no_grad():
        for block in adapted.blocks:
            block.mlp.adapter.up.weight.normal_()
    bert = Transformer(TransformerConfig(vocab_size=50, block_size=32, n_layer=1, n_head=2, n_embd=32, causal=False))
    training = tiny().train()
    for model in (lora, adapted, bert, training):
        assert OneTokenDecoder.of(model) is None
    prompt = torch.randint(50, (2, 5))
    for model in (lora, adapted):
        model.eval()
        assert generate(model, prompt, 12, 0.0).equal(generate(model, prompt, 12, 0.0, use_cache=False))


def test_a_full_buffer_is_a_clear_error():
    model = tiny()
    cache = KVBuffer(model.config, 1, capacity=6)
    model(torch.randint(50, (1, 6)), kv_cache=cache, use_cache=True)
    with pytest.raises(GenlabError, match="longer than the cache"):
        OneTokenDecoder.of(model)(torch.tensor([[1]]), cache)
