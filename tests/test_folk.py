"""Folk tunes: the event tokenizer on real corpus tunes, the sampler's conditioning, the files a musician opens
(ABC, MIDI, MusicXML read back by music21; a WAV of the right length), the baselines, and bad input."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import pytest
import torch

import genlab
from genlab.cli import main
from genlab.data.folk import assign_splits, corpus_folder, deduplicate, parse_abc, read_prompt, split_tunes
from genlab.data.folk_abc import abc_text
from genlab.data.folk_tokens import VOCAB, Header, TuneError, score_tokens, tokens_score
from genlab.errors import GenlabError
from genlab.evaluation.folk_stats import fills_bars, key_consistent, overlaps, reads_back
from genlab.evaluation.ngram import KneserNey
from genlab.io.music import render_wav
from genlab.models.transformer import Transformer
from genlab.tasks import load_recipe
from genlab.tasks.folk.grammar import draw_tunes, sample_in_metre
from genlab.tasks.folk.handle import lstm_budget
from genlab.tasks.folk.output import GeneratedTunes
from genlab.tasks.folk.process import sample_tunes
from genlab.tasks.folk.tiny import tiny_run
from genlab.tasks.folk.training import model_config
from tests.conftest import one_error_line, snapshot

music21 = pytest.importorskip("music21")
HAS_RENDERER = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").is_file() and bool(__import__("shutil").which("fluidsynth"))


@pytest.fixture(scope="module")
def real_tunes() -> list[tuple[str, list[str]]]:
    """Eight real tunes of O'Neill's first file (ABC text, tokens) that the vocabulary holds."""
    out = []
    for abc in split_tunes((corpus_folder("oneills1850") / "0051-0100.abc").read_text(encoding="utf-8")):
        try:
            out.append((abc, parse_abc(abc)))
        except TuneError:
            continue
        if len(out) == 8:
            return out
    raise AssertionError("fewer than 8 readable tunes")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("folk")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_DATA_DIR", str(folder / "data"))
        case = tiny_run(folder)
        assert main(["train", case.recipe, "--out", str(folder / "run"), *case.overrides]) == 0
        yield case, folder / "run"


def test_tokens_score_tokens_round_trip_on_real_tunes(real_tunes):
    for _, tokens in real_tunes:
        for tonic in ("D", "Bb", "F#"):
            assert score_tokens(tokens_score(tokens, tonic), tokens[3][2:]) == tokens


def test_abc_written_from_tokens_reads_back_the_same(real_tunes):
    for _, tokens in real_tunes:
        assert parse_abc(abc_text(tokens, "Eb", strict=True)) == tokens
        assert reads_back(tokens)
    # Real tunes mostly fill their bars (92 % of the test split; these slow airs less: the books have their
    # slips) and are mostly
    # found in their key by Krumhansl-Schmuckler.
    assert sum(fills_bars(t) for _, t in real_tunes) >= 4 and sum(key_consistent(t) for _, t in real_tunes) >= 6


def test_the_sampler_keeps_the_requested_header_and_stops_at_end():
    torch.manual_seed(0)
    model = Transformer(model_config(load_recipe("folk-tunes", ["data.block_size=64"]))).eval()
    header = Header("9/8", "dorian", "slipjig")
    tunes = sample_tunes(model, header.tokens(), 3, seed=1, max_tokens=40)
    assert len(tunes) == 3 and all(t[:4] == header.tokens() for t in tunes)
    assert all(len(t) <= 4 + 40 and ("<end>" not in t[:-1]) for t in tunes)
    score = GeneratedTunes(tunes, "E").score()
    signatures = {ts.ratioString for ts in score.recurse().getElementsByClass("TimeSignature")}
    keys = {(k.tonic.name, k.mode) for k in score.recurse().getElementsByClass("Key")}
    assert signatures == {"9/8"} and keys == {("E", "dorian")}


def test_midi_and_musicxml_read_back_by_music21(real_tunes, tmp_path):
    tunes = GeneratedTunes([t for _, t in real_tunes[:2]], "G")
    count = sum(len(music21.converter.parse(abc, format="abc").recurse().notes) for abc, _ in real_tunes[:2])
    for suffix in (".mid", ".musicxml", ".abc"):
        path = tunes.save(tmp_path / f"tunes{suffix}")
        back = music21.converter.parse(path)
        pitched = [n for n in back.recurse().notes if not n.duration.isGrace]
        assert abs(len(pitched) - count) <= 0.05 * count, suffix  # tied notes may merge in MIDI
    assert tunes.save(tmp_path / "roll.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(not HAS_RENDERER, reason="needs Debian fluidsynth and fluid-soundfont-gm")
def test_wav_lasts_as_long_as_the_tune(real_tunes, tmp_path):
    _, tokens = real_tunes[0]
    score = tokens_score(tokens)
    seconds = float(score.highestTime) * 0.5  # music21 writes MIDI at 120 quarter notes a minute
    with wave.open(str(render_wav(score, tmp_path / "tune.wav"))) as w:
        length = w.getnframes() / w.getframerate()
    assert seconds <= length <= seconds + 3  # FluidSynth lets the last note ring out


def test_no_sound_font_is_one_line_naming_the_package(real_tunes, tmp_path):
    with pytest.raises(GenlabError, match="fluid-soundfont-gm"):
        render_wav(tokens_score(real_tunes[0][1]), tmp_path / "x.wav", sound_font=tmp_path / "none.sf2")
    assert not (tmp_path / "x.wav").exists()


def test_kneser_ney_is_a_distribution():
    seqs = [[1, 2, 3, 2, 3, 4], [1, 3, 2, 3, 4, 4], [1, 2, 2, 3]]
    model = KneserNey(3, 6).fit(seqs)
    for context in ((1, 2), (3, 4), (5, 5)):
        assert math.isclose(sum(model.prob(context, t) for t in range(6)), 1.0, rel_tol=1e-9)


def test_histogram_overlap_is_one_for_the_same_tunes_and_less_for_others(real_tunes):
    tunes = [t for _, t in real_tunes]
    assert all(math.isclose(v, 1.0) for v in overlaps(tunes, tunes).values())
    assert min(overlaps(tunes[:2], tunes[4:]).values()) < 1


@pytest.mark.parametrize(
    ("abc", "message"),
    [
        ("garbage", "not an ABC tune music21 can read"),
        ("X:1\nM:7/8\nL:1/8\nK:D\nABCDEFG|ABCDEFG|", "metre 7/8 is not one of"),  # outside the vocabulary
        ("X:1\nM:6/8\nL:1/8\nK:D\nc''2 d''2 e''2|", "outside the vocabulary's range"),  # a piccolo's tune
    ],
)
def test_a_prompt_the_model_cannot_continue_is_one_line(abc, message):
    with pytest.raises(GenlabError, match=message):
        read_prompt(abc, 2)


def test_generate_continues_a_prompt_in_its_metre_and_key(tiny):
    case, run = tiny
    tunes = genlab.load(run).generate(**case.generate)
    guided = genlab.load(run).generate(**case.generate, guidance=2.0)  # 6/8, pushed away from 3/4
    prefix, tonic = read_prompt(case.generate["prompt"], 2)
    assert tonic == "A" and tunes.tonic == "A"
    assert all(t[: len(prefix)] == prefix for t in tunes.tunes + guided.tunes) and prefix[1:3] == ["M:6/8", "K:dorian"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--mode", "lydian"], "unknown mode 'lydian'"),
        (["--meter", "7/8"], "unknown meter '7/8'"),
        (["--tonic", "H"], "unknown tonic 'H'"),
        (["--prompt", "garbage"], "prompt"),
        (["--prompt-file", "missing.abc"], "no such file"),
        (["--n", "0"], "--n"),
        (["--guidance", "11"], "metre guidance must be in"),
        (["--sampling", "free", "--guidance", "1"], "metre sampling only"),
    ],
)
def test_bad_generate_options_are_one_line_exit_2_nothing_written(tiny, tmp_path, capsys, options, message):
    _, run = tiny
    before = snapshot(run)
    out = tmp_path / "tunes.wav"
    assert main(["generate", str(run), *options, "--out", str(out)]) == 2
    one_error_line(capsys, message)
    assert not out.exists() and snapshot(run) == before
    assert len(VOCAB) == genlab.load(run).config.vocab_size


def test_bars_fill_with_a_pickup_and_a_part_that_ends_short():
    head = ["<tune>", "M:6/8", "K:major", "R:jig"]
    bar = ["p0", "d1/2"] * 6
    pickup, short = ["p0", "d1/2"], ["p0", "d1/2"] * 5
    tune = [*head, *pickup, "|", *bar, "|", *short, "|", *pickup, "|", *bar, "|", *short, "|", "<end>"]
    assert fills_bars(tune)
    assert not fills_bars([*head, *pickup, "|", *bar, "|", *bar, "p0", "d1/2", "|", *bar, "|", "<end>"])


def test_splits_are_fixed_disjoint_and_duplicates_kept_once():
    first, again = assign_splits(200), assign_splits(200)
    assert first == again and first.count("test") == first.count("validation") == 10
    tunes = [{"tokens": "<tune> M:6/8 K:major R:jig p0 d1/2 | p2 d1/2 | <end>"}] * 2
    assert len(deduplicate(tunes)) == 1


@pytest.mark.parametrize(("value", "want"), [("off", None), ("same", 12.5), ("30", 30.0)])
def test_the_lstm_budget_option(value, want):
    assert lstm_budget(value, {"cost": {"cpu_seconds": 12.5}}) == want
    with pytest.raises(GenlabError, match="--lstm"):
        lstm_budget("-1", {})


def test_metre_constrained_sampling_fills_every_bar_even_untrained():
    torch.manual_seed(0)
    model = Transformer(model_config(load_recipe("folk-tunes", ["data.block_size=128"]))).eval()
    for header in (Header("6/8", "major", "jig"), Header("3/4", "minor"), Header("2/2", "dorian", "reel")):
        tunes = sample_in_metre(model, header.tokens(), 3, seed=2, max_tokens=120)
        assert all(t[:4] == header.tokens() and fills_bars(t) for t in tunes)
    with pytest.raises(GenlabError, match="unknown sampling"):
        draw_tunes(model, header.tokens(), 1, 0, sampling="strict")
