"""The VQGAN (genlab/models/vqgan.py, task vqgan) and the token transformer (task vq_dalle) on tiny data:
the quantiser's straight-through gradient and commitment loss, encode/decode shapes and the token round
trip, classifier-free guidance at w = 0 being the unconditional model, KV-cached sampling equal to
uncached, and bad input (wrong image size or mode, empty or too-long prompt) as one line."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import genlab
from genlab.cli import main
from genlab.errors import GenlabError
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.models.vqgan import VQGAN, VQGANConfig
from genlab.serve import create_app
from genlab.tasks.vq_dalle.captions import CaptionTokenizer, combination_captions, words
from genlab.tasks.vq_dalle.process import guided, sample_tokens
from genlab.tasks.vq_dalle.tiny import tiny_run as tiny_dalle
from genlab.tasks.vqgan.process import code_usage
from genlab.tasks.vqgan.tiny import tiny_run as tiny_vqgan
from tests.conftest import one_error_line

K = 16  # codes of the tiny models here


@pytest.fixture(scope="module")
def vqgan() -> VQGAN:
    torch.manual_seed(0)
    model = VQGAN(VQGANConfig(width=16, code_dim=4, codebook_size=K))
    model(torch.rand(8, 1, 28, 28))  # k-means initialisation of the codebook
    return model.eval()


def test_quantiser_passes_gradients_straight_through_and_scores_commitment():
    torch.manual_seed(0)
    model = VQGAN(VQGANConfig(width=16, code_dim=4, codebook_size=K, commitment=0.25)).train()
    z = torch.randn(2, 4, 7, 7, requires_grad=True)
    model.quantize(z.detach())  # the first pass initialises the codebook by k-means
    codebook = model.quantizer.codebook.clone()  # (K, D) before this step's EMA moves it
    q, ids, commit = model.quantize(z)
    assert ids.shape == (2, 49) and q.shape == z.shape
    nearest = torch.nn.functional.embedding(ids, codebook).view(2, 7, 7, 4).permute(0, 3, 1, 2)
    assert torch.allclose(q, nearest, atol=1e-6)  # the value is the nearest code
    assert commit.item() == pytest.approx(0.25 * (z - nearest).pow(2).mean().item(), rel=1e-4)
    (q * torch.arange(q.numel()).view_as(q)).sum().backward(retain_graph=True)
    assert torch.equal(z.grad, torch.arange(q.numel()).view_as(q).float())  # dq/dz is the identity
    z.grad = None
    commit.backward()
    assert torch.allclose(z.grad, 0.25 * 2 * (z - nearest).detach() / z.numel(), atol=1e-7)


def test_encode_decode_shapes_and_the_token_round_trip(vqgan):
    images = torch.rand(3, 1, 28, 28)
    ids = vqgan.encode(images)
    assert ids.shape == (3, 49) and ids.dtype == torch.long and 0 <= ids.min() and ids.max() < K
    decoded = vqgan.decode(ids)
    assert decoded.shape == (3, 1, 28, 28) and 0 <= decoded.min() and decoded.max() <= 1
    logits, forward_ids, _ = vqgan(images)  # the training pass, in eval mode: no codebook update
    assert torch.equal(forward_ids, ids) and torch.allclose(torch.sigmoid(logits), decoded, atol=1e-6)
    assert torch.equal(vqgan.quantize(vqgan.codes(ids))[1], ids)  # a code's nearest code is itself
    with pytest.raises(GenlabError, match="token ids must be"):
        vqgan.decode(ids[:, :48])


def test_code_usage_counts_and_perplexity():
    usage = code_usage(torch.tensor([[0, 1], [2, 3]]), 8)
    assert usage["codebook_use"] == 0.5 and usage["perplexity"] == pytest.approx(4.0)
    assert code_usage(torch.zeros(5, dtype=torch.long), 8)["perplexity"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def dalle() -> tuple[Transformer, CaptionTokenizer]:
    tokenizer = CaptionTokenizer.from_captions(combination_captions("fashion-mnist", False)[0], K, 6)
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=tokenizer.vocab_size, block_size=6 + 8, n_layer=2, n_head=2, n_embd=16)
    return Transformer(config).eval(), tokenizer


def _prefixes(tokenizer: CaptionTokenizer, *prompts: str) -> torch.Tensor:
    rows = torch.stack([tokenizer.encode(p) for p in prompts])
    return torch.cat([rows, torch.full((len(prompts), 1), tokenizer.image)], dim=1)


def test_guidance_zero_is_the_unconditional_model(dalle):
    model, tokenizer = dalle
    null = _prefixes(tokenizer, "x")[0]
    null[:-1] = tokenizer.null_caption()
    a = _prefixes(tokenizer, "a pair of trousers", "a bag")
    b = _prefixes(tokenizer, "a coat", "a dress")
    draws = [
        sample_tokens(model, p, null, 8, K, guidance=w, generator=torch.Generator().manual_seed(3))
        for p, w in ((a, 0.0), (b, 0.0), (null.expand(2, -1), 1.0))
    ]
    assert torch.equal(draws[0], draws[1]) and torch.equal(draws[0], draws[2])
    cond, uncond = torch.randn(2, K), torch.randn(2, K)
    assert torch.equal(guided(torch.cat([cond, uncond]), 2, 0.0), uncond)
    assert torch.allclose(guided(torch.cat([cond, uncond]), 2, 2.0), uncond + 2 * (cond - uncond))


@pytest.mark.parametrize(("guidance", "temperature", "top_k"), [(3.0, 1.0, None), (1.0, 0.8, 5), (2.0, 0.0, None)])
def test_cached_generation_equals_uncached(dalle, guidance, temperature, top_k):
    model, tokenizer = dalle
    null = _prefixes(tokenizer, "x")[0]
    null[:-1] = tokenizer.null_caption()
    prefixes = _prefixes(tokenizer, "a pair of trousers", "a bag", "a coat")
    cached, uncached = (
        sample_tokens(
            model, prefixes, null, 8, K, guidance, temperature, top_k, torch.Generator().manual_seed(7), use_cache
        )
        for use_cache in (True, False)
    )
    assert torch.equal(cached, uncached)
    assert cached.shape == (3, 8) and cached.max() < K  # only image codes are ever drawn


def test_prompts_are_checked(dalle):
    _, tokenizer = dalle
    row = tokenizer.encode("A pair of culottes!")
    assert row.tolist()[:4] == [tokenizer.ids["a"], tokenizer.ids["pair"], tokenizer.ids["of"], tokenizer.unk]
    assert row.tolist()[4:] == [tokenizer.pad] * 2
    for prompt, message in (("", "empty"), ("  ?! ", "empty"), ("one two three four five six seven", "7 words")):
        with pytest.raises(GenlabError, match=message):
            tokenizer.encode(prompt)


def test_held_out_captions_are_new_combinations_of_training_words():
    for dataset in ("fashion-mnist", "mnist"):
        (train, train_labels), (held, held_labels) = (combination_captions(dataset, h) for h in (False, True))
        vocabulary = {w for text in train for w in words(text)}
        assert not set(train) & set(held) and len(held) > len(train) / 3
        assert all(set(words(text)) <= vocabulary for text in held)  # no word the model never read
        assert set(held_labels.tolist()) == set(train_labels.tolist()) == set(range(10))
        assert train_labels.diff().min() >= 0 and held_labels.diff().min() >= 0  # sorted by class


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, str]:
    """A tiny vqgan run and a tiny vq_dalle run, trained through the CLI."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_OFFLINE", "1")
        mp.setenv("GENLAB_DATA_DIR", str(tmp_path_factory.mktemp("data-cache")))
        for name, tiny in (("vqgan", tiny_vqgan), ("vq_dalle", tiny_dalle)):
            folder = tmp_path_factory.mktemp(name)
            case = tiny(folder)
            assert main(["train", case.recipe, *case.overrides, "--out", str(folder / "run")]) == 0
            out[name] = str(folder / "run")
    return out


def test_generation_through_the_handle_is_cached_and_reproducible(runs):
    handle = genlab.load(runs["vq_dalle"])
    a = handle.generate(n=3, seed=5, prompt="the digit seven", guidance=2.0)
    b = handle.generate(n=3, seed=5, prompt="the digit seven", guidance=2.0)
    assert torch.equal(a.images, b.images) and a.images.shape == (3, 1, 28, 28)
    assert handle.generate(n=2, label=3).labels.tolist() == [3, 3]


@pytest.mark.parametrize(
    ("size", "mode", "message"), [((32, 32), "L", "32x32 pixels; it must be 28x28"), ((28, 28), "RGB", "RGB image")]
)
def test_vqgan_refuses_an_image_of_the_wrong_size_or_mode(runs, tmp_path, capsys, size, mode, message):
    path = tmp_path / "in.png"
    Image.new(mode, size).save(path)
    assert main(["generate", runs["vqgan"], "--input", str(path), "--out", str(tmp_path / "out.png")]) == 2
    one_error_line(capsys, message)
    assert not (tmp_path / "out.png").exists()


def test_vqgan_reconstructs_an_input_image(runs, tmp_path):
    path = tmp_path / "in.png"
    Image.new("L", (28, 28), 128).save(path)
    assert main(["generate", runs["vqgan"], "--input", str(path), "--out", str(tmp_path / "out.png")]) == 0
    with Image.open(tmp_path / "out.png") as image:
        assert image.size[0] > 28  # a grid of one 28x28 image, framed and scaled up


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("", "--prompt is empty"), (" ".join(["word"] * 40), "--prompt has 40 words"), ("x" * 2000, "characters")],
)
def test_vq_dalle_refuses_an_empty_or_too_long_prompt(runs, tmp_path, capsys, prompt, message):
    out = tmp_path / "grid.png"
    assert main(["generate", runs["vq_dalle"], "--prompt", prompt, "--n", "2", "--out", str(out)]) == 2
    one_error_line(capsys, message)
    assert not out.exists()


def test_the_images_endpoint_takes_a_prompt_for_a_text_conditioned_model(runs):
    app = create_app({"dalle": genlab.load(runs["vq_dalle"]), "vqgan": genlab.load(runs["vqgan"])})
    with TestClient(app) as client:
        body = {"model": "dalle", "n": 2, "prompt": "the digit seven", "seed": 3}
        answer = client.post("/v1/images/generations", json=body)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["data"]) == 2
        refused = client.post("/v1/images/generations", json={**body, "model": "vqgan"})
        assert refused.status_code == 422 and "takes no prompt" in refused.text
        too_long = client.post("/v1/images/generations", json={**body, "prompt": "word " * 20})
        assert too_long.status_code in (400, 422) and "words" in too_long.text
