"""`export_model` folders open with transformers as they are: AutoTokenizer gives genlab's token ids,
AutoModelFor... gives genlab's logits, and pipeline() runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from genlab.interop.hf import export_model
from genlab.io.tokenizers import EOS, MASK, PAD, CharTokenizer, build_tokenizer, load_tokenizer
from genlab.models.generation import generate
from genlab.models.transformer import Transformer, TransformerConfig

transformers = pytest.importorskip("transformers")

CORPUS = [
    "In the beginning God created the heaven and the earth.",
    "Y dijo Dios: Sea la luz; y fué la luz.",
    "Jesus wept.\n  And the dove 🕊 returned.",
]
# Leading and doubled spaces, newlines, a tab, accents, an emoji, and (for char) characters never seen
# in training: "Z", "q", "ß", "€", "\t", "🙂".
SENTENCE = "  Zeal and light , fué\n\nquiet ß€\t🕊🙂 earth .  "


def tiny(vocab_size: int, causal: bool) -> Transformer:
    torch.manual_seed(0)
    bert = {} if causal else {"pre_ln": False, "type_vocab_size": 2, "activation": "gelu"}
    cfg = TransformerConfig(vocab_size=vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=16, causal=causal, **bert)
    model = Transformer(cfg).eval()
    with torch.no_grad():  # fresh LayerNorms are 1 and 0 and biases 0: randomise them so a mix-up shows
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def check_tokenizer(folder: Path, tok) -> transformers.PreTrainedTokenizerBase:
    """AutoTokenizer on the folder encodes and decodes as genlab's tokenizer, and genlab reads it back."""
    theirs = transformers.AutoTokenizer.from_pretrained(str(folder))
    ids = tok.encode(SENTENCE)
    # add_special_tokens=False: genlab's encode never adds special tokens, while transformers lets a tokenizer
    # add them by default (BERT's [CLS] ... [SEP]); so the bare encodings are what must agree...
    assert theirs(SENTENCE, add_special_tokens=False)["input_ids"] == ids
    # ...and genlab trained on text without them, so the default call (what pipelines use) adds none either.
    assert theirs(SENTENCE)["input_ids"] == ids
    assert theirs.decode(ids, skip_special_tokens=True) == tok.decode(ids)
    assert (theirs.pad_token_id, theirs.eos_token_id, theirs.mask_token_id) == tuple(
        tok.token_id(t) for t in (PAD, EOS, MASK)
    )
    assert theirs.model_max_length == 64
    again = load_tokenizer(folder)
    assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
    assert again.encode(SENTENCE) == ids and again.decode(ids) == tok.decode(ids)
    config = json.loads((folder / "config.json").read_text())
    assert (config["pad_token_id"], config["eos_token_id"]) == (tok.token_id(PAD), tok.token_id(EOS))
    return theirs


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_gpt_export_opens_with_transformers(kind: str, tmp_path: Path):
    tok = build_tokenizer(kind, CORPUS, vocab_size=300)
    if kind == "char":
        assert tok.decode(tok.encode(SENTENCE)) != SENTENCE  # the unseen characters are really unseen
    else:
        assert tok.decode(tok.encode(SENTENCE)) == SENTENCE
    model = tiny(tok.vocab_size, causal=True)
    folder = export_model(model, tok, tmp_path / "model")
    theirs_tok = check_tokenizer(folder, tok)

    theirs = transformers.AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    enc = theirs_tok(SENTENCE, return_tensors="pt")  # all the model's inputs, as a user would pass them
    with torch.no_grad():
        diff = (theirs(**enc).logits - model(torch.tensor([tok.encode(SENTENCE)])).logits).abs().max().item()
    assert diff <= 1e-5

    prompt = "the earth"
    ids = torch.tensor([tok.encode(prompt)])
    ours = generate(model, ids, 6, temperature=0.0, stop=[tok.token_id(EOS)])  # transformers stops at eos too
    generator = transformers.pipeline("text-generation", model=str(folder))
    out = generator(prompt, max_new_tokens=6, do_sample=False)[0]["generated_text"]
    assert out == prompt + tok.decode(ours[0, ids.shape[1] :].tolist())


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_bert_export_opens_with_transformers(kind: str, tmp_path: Path):
    tok = build_tokenizer(kind, CORPUS, vocab_size=300)
    model = tiny(tok.vocab_size, causal=False)
    folder = export_model(model, tok, tmp_path / "model")
    theirs_tok = check_tokenizer(folder, tok)

    theirs = transformers.AutoModelForMaskedLM.from_pretrained(str(folder)).eval()
    enc = theirs_tok(SENTENCE, return_tensors="pt")
    with torch.no_grad():
        diff = (theirs(**enc).logits - model(torch.tensor([tok.encode(SENTENCE)])).logits).abs().max().item()
    assert diff <= 1e-5

    # A written-out <mask> is the mask token for transformers (genlab's char encode would spell it out).
    left, right = tok.encode("the "), tok.encode(" earth")
    ids = torch.tensor([left + [tok.token_id(MASK)] + right])
    with torch.no_grad():
        best = model(ids).logits[0, len(left)].topk(3).indices.tolist()
    fill = transformers.pipeline("fill-mask", model=str(folder))
    assert [r["token"] for r in fill(f"the {MASK} earth", top_k=3)] == best


def test_old_genlab_char_files_still_load(tmp_path: Path):
    tok = CharTokenizer.train(CORPUS)
    # What CharTokenizer.save wrote before it wrote Hugging Face's format: runs made then keep working.
    (tmp_path / "tokenizer.json").write_text(json.dumps({"format": "genlab-char", "vocab": tok.itos}))
    again = load_tokenizer(tmp_path)
    assert isinstance(again, CharTokenizer) and again.itos == tok.itos
    assert again.encode(SENTENCE) == tok.encode(SENTENCE)
