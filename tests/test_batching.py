"""Continuous batching (genlab.models.batching) picks the tokens each sequence would get alone."""

from __future__ import annotations

import pytest
import torch

from genlab.io.tokenizers import build_tokenizer
from genlab.models.batching import ContinuousBatch, Sequence
from genlab.models.generation import TextPieces, generate, penalized
from genlab.models.transformer import Transformer, TransformerConfig

STOP = 3


@pytest.fixture(scope="module")
def model() -> Transformer:
    torch.manual_seed(0)
    return Transformer(TransformerConfig(vocab_size=50, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()


def requests(count: int) -> list[dict]:
    """Prompts of 1-19 tokens, up to 59 new tokens (past the 32-token context: the window slides),
    greedy and sampled, some with top-k, some with presence/frequency penalties, some ending at a stop token."""
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(count):
        length = int(torch.randint(1, 20, (1,), generator=g))
        out.append(
            dict(
                prompt=torch.randint(0, 50, (length,), generator=g).tolist(),
                max_new_tokens=int(torch.randint(1, 60, (1,), generator=g)),
                temperature=[0.0, 1.0, 0.7][i % 3],
                top_k=[None, 5][i % 2],
                seed=i,
                presence_penalty=[0.0, 0.5, 0.0, -0.3, 1.5][i % 5],
                frequency_penalty=[0.0, 0.0, 0.8, 0.0, 1.0][i % 5],
                stop_ids=frozenset({STOP}) if i % 4 == 0 else frozenset(),
            )
        )
    return out


def alone(model: Transformer, r: dict) -> list[int]:
    """The same request through generation.generate, cut after its stop token."""
    out = generate(
        model,
        torch.tensor([r["prompt"]]),
        r["max_new_tokens"],
        r["temperature"],
        r["top_k"],
        None,
        stop=r["stop_ids"],
        seed=r["seed"],
        presence_penalty=r["presence_penalty"],
        frequency_penalty=r["frequency_penalty"],
    )[0, len(r["prompt"]) :].tolist()
    return out[: out.index(STOP) + 1] if r["stop_ids"] and STOP in out else out


@pytest.mark.parametrize("joins_per_step", [1, 2, 12])
def test_batched_sequences_get_the_tokens_they_get_alone(model, joins_per_step):
    specs = requests(12)
    seqs = [Sequence(**r) for r in specs]
    batch, pending, widest = ContinuousBatch(model), list(seqs), 0
    while pending or len(batch):  # sequences join while others are mid-way, and leave as they finish
        for _ in range(joins_per_step):
            if pending:
                batch.add(pending.pop(0))
        batch.step()
        widest = max(widest, len(batch.rows))
    assert widest > 1  # the batch really held several sequences at once
    for seq, r in zip(seqs, specs):
        assert seq.tokens == alone(model, r)
        assert seq.finish_reason == ("stop" if seq.tokens[-1:] == [STOP] and r["stop_ids"] else "length")


def test_a_removed_sequence_leaves_the_others_unchanged(model):
    specs = requests(4)
    seqs = [Sequence(**r) for r in specs]
    batch = ContinuousBatch(model)
    for seq in seqs:
        batch.add(seq)
    batch.step()
    batch.step()
    batch.remove(seqs[1])
    while len(batch):
        batch.step()
    assert len(seqs[1].tokens) == 2 and not seqs[1].done
    for i in (0, 2, 3):
        assert seqs[i].tokens == alone(model, specs[i])


def test_a_batch_of_sampling_rows_only_draws_what_each_draws_alone(model):
    """Rows that all sample from the whole distribution (no greedy row) share one softmax and one argmax over
    their own exponential noise: each must still draw what torch.multinomial draws for it alone."""
    specs = [
        dict(prompt=[7, i + 1, 4], max_new_tokens=40, temperature=[1.0, 0.7, 1.3][i % 3], seed=10 + i) for i in range(5)
    ]
    seqs = [Sequence(**r) for r in specs]
    batch = ContinuousBatch(model)
    for seq in seqs:
        batch.add(seq)
    while len(batch):
        batch.step()
    for seq, r in zip(seqs, specs):
        expected = generate(model, torch.tensor([r["prompt"]]), 40, r["temperature"], seed=r["seed"])
        assert seq.tokens == expected[0, 3:].tolist()
    assert len({tuple(seq.tokens) for seq in seqs}) == len(seqs)  # the rows really drew apart


def test_bad_settings_are_refused_when_added(model):
    batch = ContinuousBatch(model)
    with pytest.raises(Exception, match="temperature"):
        batch.add(Sequence([1, 2], 5, temperature=-1.0))
    with pytest.raises(Exception, match="longer than the model's context"):
        batch.add(Sequence(list(range(40)), 5))
    with pytest.raises(Exception, match=r"frequency_penalty must be in \[-2, 2\], got nan"):
        batch.add(Sequence([1, 2], 5, frequency_penalty=float("nan")))
    assert len(batch) == 0


def test_penalties_follow_openais_formula():
    logits = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    counts = torch.tensor([[0.0, 1.0, 3.0, 0.0]])
    # mu[j] - c[j] * frequency - (c[j] > 0) * presence
    assert torch.equal(penalized(logits, counts, 0.5, 0.25), torch.tensor([[1.0, 1.25, 1.75, 4.0]]))


def test_penalties_steer_greedy_decoding_away_from_repeats(model):
    prompt = torch.tensor([[5, 9, 2]])
    plain = generate(model, prompt, 30, 0.0)[0, 3:].tolist()
    penalised = generate(model, prompt, 30, 0.0, presence_penalty=2.0, frequency_penalty=2.0)[0, 3:].tolist()
    assert len(set(penalised)) > len(set(plain))  # the same greedy decoder, fewer tokens said again
    assert max(map(penalised.count, penalised)) < max(map(plain.count, plain))


class Letters:
    """A tokenizer of single letters, and one id (26) that decodes to half a UTF-8 character."""

    def decode(self, ids):
        return "".join("\ufffd" if i == 26 else chr(97 + i) for i in ids)


def test_text_pieces_hold_back_what_could_be_a_stop_string():
    pieces = TextPieces(Letters(), ["cd"])
    given = [pieces.add(i) for i in (0, 1, 2)]  # "abc": "c" may start "cd"
    assert given == ["a", "b", ""]
    assert pieces.add(4) == "ce" and not pieces.stopped  # "c" was not the stop after all
    assert pieces.add(2) == "" and pieces.add(3) == "" and pieces.stopped  # "...cd": the text ends before it
    assert pieces.finish() == ""
    other = TextPieces(Letters())
    assert other.add(0) == "a" and other.add(26) == "" and other.finish() == "\ufffd"


@pytest.fixture(scope="module")
def tokenizers() -> dict:
    """A byte-level BPE (multi-byte characters split across tokens) and a char tokenizer, on text with accents."""
    texts = ["Thou art the café, the naïve señor — «ÿ» and € 100 ", "and the LORD said unto Moses, Go in"] * 40
    return {kind: build_tokenizer(kind, texts, vocab_size=300) for kind in ("bpe", "char")}


@pytest.mark.parametrize("kind", ["bpe", "char"])
@pytest.mark.parametrize("stops", [[], ["the"], [", ", "€"], ["\n\n"]])
def test_text_pieces_decode_incrementally_what_a_full_decode_gives(tokenizers, kind, stops):
    """Pieces of random ids (broken UTF-8 included) add up to the full decode, cut before the first stop string."""
    tokenizer = tokenizers[kind]
    g = torch.Generator().manual_seed(len(stops) + (kind == "bpe"))
    for _ in range(20):
        ids = torch.randint(
            0, tokenizer.vocab_size, (int(torch.randint(1, 120, (1,), generator=g)),), generator=g
        ).tolist()
        pieces = TextPieces(tokenizer, stops)
        given = []
        for i in ids:
            given.append(pieces.add(i))
            if pieces.stopped:
                break
        given.append(pieces.finish())
        full = tokenizer.decode(ids)
        cut = min((full.find(s) for s in stops if s in full), default=len(full))
        assert "".join(given) == full[:cut] and pieces.stopped == (cut < len(full))


@pytest.mark.parametrize("top_k, top_p", [(None, None), (1, 5e-324), (5, 0.5)])
def test_a_vanishing_temperature_samples_the_greedy_tokens(model, top_k, top_p):
    """5e-324 is a valid temperature (the smallest float): logits / 5e-324 would be inf and the softmax NaN;
    it sharpens to greedy instead, alone and in a batch (plain rows and top-k/top-p rows sample apart)."""
    prompt = [5, 9, 2]
    greedy = generate(model, torch.tensor([prompt]), 12, 0.0)[0, 3:].tolist()
    assert generate(model, torch.tensor([prompt]), 12, 5e-324, top_k, top_p, seed=0)[0, 3:].tolist() == greedy
    seqs = [Sequence(prompt, 12, temperature=5e-324, top_k=top_k, top_p=top_p, seed=i) for i in range(2)]
    batch = ContinuousBatch(model)
    for seq in seqs:
        batch.add(seq)
    while len(batch):
        batch.step()
    assert all(seq.tokens == greedy for seq in seqs)
