"""Generation past the context window: continuous batching's rows (what `genlab serve` decodes) pick, greedily,
the tokens of the uncached path, which reads each window whole; a rotary row rolls its cache, a row of a model
with a position table restarts its window every half context (generation.window_length)."""

from __future__ import annotations

import pytest
import torch

from genlab.models.batching import ContinuousBatch, Sequence
from genlab.models.generation import generate, window_length
from genlab.models.transformer import Transformer, TransformerConfig

BLOCK = 16


def tiny(**options) -> Transformer:
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=40, block_size=BLOCK, n_layer=2, n_head=2, n_embd=32, **options)
    return Transformer(cfg).eval()


def uncached(model: Transformer, prompt: list[int], new: int) -> list[int]:
    """Greedy tokens, each from a forward pass over its whole window and no cache."""
    seq = list(prompt)
    rotary = model.config.positions == "rotary"
    with torch.no_grad():
        for _ in range(new):
            window = seq if rotary else seq[-window_length(len(seq), BLOCK) :]
            seq.append(int(model(torch.tensor([window])).logits[0, -1].argmax()))
    return seq[len(prompt) :]


@pytest.mark.parametrize("positions", ["rotary", "learned"])
def test_batched_rows_past_the_window_equal_the_uncached_path(positions):
    model = tiny(positions=positions)
    g = torch.Generator().manual_seed(2)
    prompts = [torch.randint(40, (n,), generator=g).tolist() for n in (3, 9, BLOCK)]
    seqs = [Sequence(p, 5 * BLOCK, temperature=0.0) for p in prompts]  # five contexts of new tokens each
    batch = ContinuousBatch(model, 2)  # fewer rows than sequences: the buffer grows too
    for seq in seqs:
        batch.add(seq)
        batch.step()  # each joins while the others are mid-way
    while len(batch):
        batch.step()
        assert batch.cache.width <= batch.capacity
    for seq, prompt in zip(seqs, prompts):
        assert seq.tokens == uncached(model, prompt, 5 * BLOCK)
    assert generate(model, torch.tensor([prompts[0]]), 5 * BLOCK, temperature=0.0)[0, 3:].tolist() == seqs[0].tokens


def test_the_window_of_a_position_table_restarts_every_half_context():
    lengths = [window_length(n, BLOCK) for n in range(1, 3 * BLOCK)]
    assert lengths[:BLOCK] == list(range(1, BLOCK + 1))  # in the context: every token
    assert min(lengths[BLOCK:]) == BLOCK // 2 + 1 and max(lengths[BLOCK:]) == BLOCK  # never under half a context
    restarts = sum(b < a for a, b in zip(lengths, lengths[1:]))
    assert restarts == 4  # at lengths 17, 25, 33 and 41: one per half context past the first


def test_a_rolling_row_copies_its_buffer_once_per_context_not_per_token():
    model = tiny(positions="rotary")
    batch = ContinuousBatch(model, 1)
    batch.add(Sequence([1, 2, 3], 6 * BLOCK, temperature=0.0))
    trims, widths = 0, []
    while len(batch):
        before = batch.cache.width
        batch.step()
        trims += batch.cache.width < before
        widths.append(batch.cache.width)
    assert 4 <= trims <= 6 and max(widths) == 2 * BLOCK  # ~ (3 + 96 - 16) / 16 trims, not 80
