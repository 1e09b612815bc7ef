"""The translation task's own checks: the book split leaks no verse, the encoder-decoder's masking, beam 1 =
greedy, label smoothing, the reusable scorer, and the translations endpoint's bad input."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

import genlab
from genlab.data.parallel import Pair, file_pairs, split_pairs
from genlab.errors import GenlabError
from genlab.evaluation.translation import copy_source, one_by_one, score_translator
from genlab.models.seq2seq import Seq2Seq, Seq2SeqConfig, beam_search, greedy, pad_rows
from genlab.serve import create_app
from genlab.tasks import load_recipe
from genlab.tasks.translation.process import smoothed_loss
from genlab.tasks.translation.tiny import tiny_run


def assert_no_leak(splits: dict[str, list[Pair]]) -> None:
    """No verse (by reference or by source text) and no book in two splits."""
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not {p.ref for p in splits[a]} & {p.ref for p in splits[b]}
        assert not {p.book for p in splits[a]} & {p.book for p in splits[b]}


def test_book_split_keeps_whole_books_apart():
    books = ["Gen", "Ruth", "Joel", "Mark", "Jonah", "Col"]
    pairs = [Pair(f"{b} 1:{v}", b, f"{b} verse {v}", f"{b} versículo {v}") for b in books for v in range(1, 6)]
    splits = split_pairs(pairs)
    assert {p.book for p in splits["test"]} == {"Ruth", "Jonah"}
    assert {p.book for p in splits["validation"]} == {"Joel", "Col"}
    assert sum(map(len, splits.values())) == len(pairs)
    assert_no_leak(splits)
    with pytest.raises(GenlabError, match="both a test and a validation book"):
        split_pairs(pairs, ["Ruth"], ["Ruth"])
    with pytest.raises(GenlabError, match="the test split is empty"):
        split_pairs(pairs, ["Obad"], ["Joel"])


def test_a_bad_pairs_file_is_one_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"book": "A", "source": "x"}) + "\n")
    with pytest.raises(GenlabError, match="pairs.jsonl:1: expected an object"):
        file_pairs(path)


@pytest.fixture(scope="module")
def model() -> Seq2Seq:
    torch.manual_seed(0)
    return Seq2Seq(Seq2SeqConfig(vocab_size=50, block_size=24, n_enc_layer=2, n_dec_layer=2, n_embd=32, dropout=0.0))


def test_the_decoder_reads_the_source_and_ignores_its_padding(model):
    src = torch.tensor([[5, 6, 7, 8]])
    tgt = torch.tensor([[2, 9, 10]])
    logits = model(src, tgt)  # (1, 3, V)
    padded = model(torch.tensor([[5, 6, 7, 8, 0, 0]]), tgt)
    assert torch.allclose(logits, padded, atol=1e-5)
    assert not torch.allclose(logits, model(torch.tensor([[11, 12, 13, 14]]), tgt), atol=1e-3)
    # causal: the first position's prediction does not see later target tokens
    assert torch.allclose(logits[:, 0], model(src, torch.tensor([[2, 30, 31]]))[:, 0], atol=1e-5)


def test_cached_steps_give_the_full_decoders_logits(model):
    src = torch.tensor([[5, 6, 7, 8, 0], [9, 10, 11, 12, 13]])
    tgt = torch.tensor([[2, 9, 10, 11], [2, 14, 15, 16]])
    with torch.no_grad():
        memory, mask = model.encode(src), model.source_mask(src)
        full = model.decode(tgt, memory, mask)  # (B, T, V)
        source_kv, cache, steps = model.source_keys_values(memory), None, []
        for t in range(tgt.size(1)):
            logits, cache = model.step(tgt[:, t : t + 1], t, source_kv, mask, cache)
            steps.append(logits)
    assert torch.allclose(torch.stack(steps, 1), full, atol=1e-5)


def test_beam_one_is_greedy(model):
    sources = [[5, 6, 7], [8, 9, 10, 11, 12], [13], [20, 21, 22, 23]]
    assert [beam_search(model, s, 1, 15) for s in sources] == greedy(model, sources, 15)
    wide = beam_search(model, sources[0], 4, 15)
    assert isinstance(wide, list) and all(isinstance(t, int) for t in wide)


def test_label_smoothing_spreads_mass_and_skips_padding():
    logits = torch.tensor([[[10.0, 0.0, 0.0], [0.0, 10.0, 0.0]]])  # (1, 2, V=3)
    labels = torch.tensor([[0, 1]])
    plain = smoothed_loss(logits, labels, pad_id=2, smoothing=0.0)
    assert torch.isclose(plain, F.cross_entropy(logits[0], labels[0]))
    assert smoothed_loss(logits, labels, 2, 0.1) > plain  # confident and right still pays for the smoothing
    padded = smoothed_loss(torch.cat([logits, torch.randn(1, 1, 3)], 1), torch.tensor([[0, 1, 2]]), 2, 0.1)
    assert torch.isclose(padded, smoothed_loss(logits, labels, 2, 0.1))
    assert pad_rows([[1], [1, 2, 3]], 0).tolist() == [[1, 0, 0], [1, 2, 3]]


def test_the_scorer_takes_any_translator_and_gives_signatures():
    sources, references = ["In the beginning.", "Amen."], ["En el principio.", "Amén."]
    copied = score_translator(copy_source, sources, references)
    perfect = score_translator(one_by_one(dict(zip(sources, references)).get), sources, references)
    assert perfect["bleu"] == pytest.approx(100) and copied["bleu"] < 50
    assert copied["signature"]["bleu"].startswith("nrefs:1|case:mixed") and "chrF2" not in copied["signature"]["bleu"]
    assert "nc:6" in copied["signature"]["chrf"] and perfect["hypotheses"] == references
    with pytest.raises(GenlabError, match="returned 1 hypotheses"):
        score_translator(lambda s: s[:1], sources, references)


def test_the_two_recipes_are_each_others_reverse():
    en_es, es_en = load_recipe("translate-en-es"), load_recipe("translate-es-en")
    assert (en_es.data.source, en_es.data.target) == (es_en.data.target, es_en.data.source)
    assert en_es.model == es_en.model and en_es.train == es_en.train


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> genlab.tasks.contract.RunHandle:
    from genlab.cli import main

    folder = tmp_path_factory.mktemp("translation")
    case = tiny_run(folder)
    assert main(["train", case.recipe, "--out", str(folder / "run"), *case.overrides]) == 0
    return genlab.load(folder / "run")


def test_generate_refuses_bad_options_in_one_line(tiny):
    assert tiny.generate(text="one two", beam=1) == tiny.translate(["one two"], 1)[0]
    with pytest.raises(GenlabError, match="beam must be"):
        tiny.generate(text="one two", beam=0)
    with pytest.raises(GenlabError, match="needs a text"):
        tiny.generate()
    with pytest.raises(GenlabError, match="the source is"):
        tiny.generate(text="one " * 40)


def test_the_translations_endpoint_refuses_bad_input_with_json(tiny):
    with TestClient(create_app({"t": tiny})) as client:
        ok = client.post("/v1/translations", json={"model": "t", "input": ["one two", "three"], "beam": 1})
        assert ok.status_code == 200 and [d["index"] for d in ok.json()["data"]] == [0, 1]
        for body in ({"input": "  "}, {"input": []}, {"input": "one", "beam": 0}, {"input": 3}, {}):
            response = client.post("/v1/translations", json={"model": "t", **body})
            assert 400 <= response.status_code < 500 and "error" in response.json(), body
        long = client.post("/v1/translations", json={"model": "t", "input": "one " * 40})
        assert 400 <= long.status_code < 500 and "error" in long.json()
