"""Folk tunes: metre guidance (scores pushed away from the metre's twin), tunes that stop on a bar line when their
token budget runs out, batches of tunes of similar length, and the optimiser choice."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from genlab.core.muon import MuonWithAdamW, block_optimizer
from genlab.data.folk_tokens import EOS, Header, body_bars, events
from genlab.errors import GenlabError
from genlab.evaluation.folk_stats import fills_bars
from genlab.models.transformer import Transformer
from genlab.tasks import load_recipe
from genlab.tasks.folk.grammar import BEATS, draw_tunes, guided, sample_in_metre, twin_prefix
from genlab.tasks.folk.process import draw_rows
from genlab.tasks.folk.training import model_config


@pytest.fixture(scope="module")
def model() -> Transformer:
    torch.manual_seed(0)
    return Transformer(model_config(load_recipe("folk-tunes", ["data.block_size=96"]))).eval()


def test_the_twin_has_the_same_bar_and_guidance_pushes_away_from_it():
    assert twin_prefix(Header("6/8", "dorian", "jig").tokens()) == ["<tune>", "M:3/4", "K:dorian", "R:jig"]
    assert twin_prefix(Header("2/4").tokens()) is None
    for meter in ("3/4", "6/8", "4/4", "2/2", "3/2", "12/8"):
        twin = twin_prefix(Header(meter).tokens())[1][2:]
        assert Header(twin).bar_length == Header(meter).bar_length
    logits = torch.tensor([[1.0, 2.0], [3.0, 0.0]])  # row 0 under the metre, row 1 under its twin
    assert torch.equal(guided(logits, 1, 2.0), torch.tensor([[-3.0, 6.0]]))
    assert torch.equal(guided(logits, 2, 2.0), logits)  # no twin rows: unchanged


def test_guided_tunes_fill_their_bars_and_differ_only_where_a_twin_exists(model):
    jig, polka = Header("6/8", "major", "jig").tokens(), Header("2/4", "major", "polka").tokens()
    plain = sample_in_metre(model, jig, 3, seed=1, max_tokens=80)
    pushed = sample_in_metre(model, jig, 3, seed=1, max_tokens=80, guidance=3.0)
    assert all(t[:4] == jig and fills_bars(t) for t in pushed)
    assert plain != pushed
    assert sample_in_metre(model, polka, 2, seed=1, max_tokens=80, guidance=3.0) == sample_in_metre(
        model, polka, 2, seed=1, max_tokens=80
    )


def test_a_tune_out_of_tokens_stops_on_a_bar_line(model):
    # 92 tokens of context minus the header: an untrained model rarely ends by itself, so the budget ends it.
    tunes = sample_in_metre(model, Header("4/4", "minor", "reel").tokens(), 4, seed=3, max_tokens=500)
    assert all(t[-1] == EOS and t[-2] == "|" and fills_bars(t) for t in tunes)


def test_guidance_needs_metre_sampling(model):
    with pytest.raises(GenlabError, match="metre sampling only"):
        draw_tunes(model, Header().tokens(), 1, 0, sampling="free", guidance=1.0)
    with pytest.raises(GenlabError, match=r"\[0, 10\]"):
        draw_tunes(model, Header().tokens(), 1, 0, guidance=-1.0)
    with pytest.raises(GenlabError, match="eval.guidance"):
        load_recipe("folk-tunes", ["eval.sampling=free", "eval.guidance=1.5"])
    with pytest.raises(GenlabError, match="train.optimizer must be adamw or muon"):
        load_recipe("folk-tunes", ["train.optimizer=sgd"])


def test_batches_by_length_hold_neighbours_in_length():
    lengths = torch.randperm(1000)  # tune i has i tokens, shuffled
    for step in range(20):
        rows = draw_rows(lengths, 16, torch.Generator().manual_seed(step), by_length=True)
        assert len(set(rows.tolist())) == 16 and int(lengths[rows].max() - lengths[rows].min()) < 64
    again = draw_rows(lengths, 16, torch.Generator().manual_seed(0), by_length=True)
    assert torch.equal(again, draw_rows(lengths, 16, torch.Generator().manual_seed(0), by_length=True))
    spread = draw_rows(lengths, 64, torch.Generator().manual_seed(0), by_length=False)
    assert int(lengths[spread].max() - lengths[spread].min()) > 500


def test_muon_drives_the_block_matrices(model):
    optimizer = block_optimizer(model, load_recipe("folk-tunes", ["train.optimizer=muon"]).train)
    assert isinstance(optimizer, MuonWithAdamW)
    muon = {id(p) for group in optimizer.muon.param_groups for p in group["params"]}
    assert all((id(p) in muon) == (n.startswith("blocks.") and p.dim() == 2) for n, p in model.named_parameters())


def test_beat_sampling_keeps_notes_inside_the_metres_beats(model):
    for meter in ("6/8", "3/4", "4/4"):
        header = Header(meter, "major").tokens()
        for tune in draw_tunes(model, header, 3, seed=4, max_tokens=90, sampling="beats", guidance=1.0):
            assert fills_bars(tune)
            for bar in body_bars(tune)[1:]:
                onset, beat = Fraction(0), Fraction(BEATS[meter])
                for _, length, _ in events(bar, strict=False):
                    assert onset % beat == 0 or onset + length <= (onset // beat + 1) * beat, (meter, bar)
                    onset += length
