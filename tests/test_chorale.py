"""Chorales: the 16th-note grid round trip on real corpus chorales, the voice-leading counters on hand-made cases
with known counts, harmonisation keeping the given soprano exactly, and bad input as one line, exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from genlab.cli import main
from genlab.data.chorale_tokens import MODES, VOCAB, grid_score, grid_tokens, score_grid, tokens_grid, voice_notes
from genlab.data.chorales import assign_splits, score_files
from genlab.evaluation.voice_leading import crossings, parallels, range_violations, voice_leading
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.chorale.output import GeneratedChorales
from genlab.tasks.chorale.sampling import sample_grids, soprano_given
from genlab.tasks.chorale.tiny import TINY_FILES, tiny_run
from tests.conftest import one_error_line, snapshot

music21 = pytest.importorskip("music21")


@pytest.fixture(scope="module")
def real() -> list[tuple[object, str, list[list[str]]]]:
    """Three real corpus chorales: (score, mode, grid)."""
    from music21 import converter

    files = [f for f in score_files(None) if f.stem in TINY_FILES[:3]]
    return [(score, *score_grid(score)) for score in map(converter.parse, files)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chorale")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_DATA_DIR", str(folder / "data"))
        case = tiny_run(folder)
        assert main(["train", case.recipe, "--out", str(folder / "run"), *case.overrides]) == 0
        yield folder / "run"


def key_of(mode: str):
    from music21 import key

    return key.Key("C" if mode == "major" else "a")


def test_grid_score_grid_round_trip_on_real_chorales(real):
    for _, mode, grid in real:
        assert mode in MODES and len(grid) % 16 == 0
        assert score_grid(grid_score(grid, mode), key_of(mode)) == (mode, grid)
        assert tokens_grid(grid_tokens(mode, grid)) == (mode, grid)


def test_the_grid_keeps_every_note_of_the_soprano(real):
    score, mode, grid = real[0]
    written = [n.pitch.midi for n in score.parts[0].flatten().notes if not (n.tie and n.tie.type != "start")]
    gridded = [m for _, _, m in voice_notes(grid, 0) if m is not None]
    assert len(written) == len(gridded)
    assert len({w - g for w, g in zip(written, gridded)}) == 1  # one transposition for every note


def test_musicxml_written_reads_back_as_the_same_grid(real, tmp_path):
    from music21 import converter

    _, mode, grid = real[1]
    path = GeneratedChorales([grid], mode, shift=3).save(tmp_path / "c.musicxml")
    back = converter.parse(path)
    assert len(back.parts) == 4
    assert score_grid(back, key_of(mode))[1] == grid or score_grid(back)[1] == grid


@pytest.mark.skipif(not shutil.which("fluidsynth"), reason="needs Debian fluidsynth and fluid-soundfont-gm")
def test_a_chorale_wav_lasts_as_long_as_its_grid_and_its_midi_has_four_parts(real, tmp_path):
    import wave

    from music21 import converter

    _, mode, grid = real[0]
    with wave.open(str(GeneratedChorales([grid[:64]], mode).save(tmp_path / "c.wav"))) as w:
        length = w.getnframes() / w.getframerate()
    assert 8.0 <= length <= 8.0 + 5  # 4 bars of 4/4 at 120 quarter notes a minute, then the last chord rings out
    assert len(converter.parse(GeneratedChorales([grid], mode).save(tmp_path / "c.mid")).parts) == 4


def chords(*rows: tuple[int, int, int, int], beat: int = 4) -> list[list[str]]:
    """A grid of chords (S, A, T, B MIDI pitches), each held for `beat` steps."""
    return [step for row in rows for step in [[f"p{m}" for m in row]] + [["_"] * 4] * (beat - 1)]


@pytest.mark.parametrize("k", [2, 3, 7])
def test_parallels_of_k_chords_moving_in_parallel(k):
    # S-B and T-B a fifth (19 and 7 semitones), S-T an octave, A a third above T: every move is up a tone.
    grid = chords(*[(67 + 2 * i, 64 + 2 * i, 55 + 2 * i, 48 + 2 * i) for i in range(k)])
    assert parallels(grid) == (2 * (k - 1), k - 1)
    rates = voice_leading([grid])
    assert rates["beats"] == k
    assert rates["parallel_fifths_octaves_per_100_beats"] == pytest.approx(round(100 * 3 * (k - 1) / k, 3))


def test_contrary_and_oblique_motion_are_no_parallels():
    grid = chords((72, 64, 55, 48), (74, 67, 59, 43))  # S-B octave to octave by contrary motion
    assert parallels(grid) == (0, 0)
    grid = chords((67, 64, 60, 48), (67, 65, 60, 48))  # only the alto moves
    assert parallels(grid) == (0, 0)


def test_range_violations_and_crossings_count_what_is_out_of_place():
    grid = chords((84, 64, 55, 48), (72, 64, 55, 30), (72, 64, 55, 48))  # soprano C6, bass F#1: two out of range
    assert range_violations(grid) == 2
    grid = chords((60, 64, 55, 48), (60, 64, 55, 48), (67, 64, 55, 48))  # alto above soprano for two beats
    assert crossings(grid) == 2 and voice_leading([grid])["voice_crossings_per_100_beats"] == pytest.approx(66.667)


def test_splits_keep_settings_of_one_melody_together():
    chorales = [{"mode": "major", "tokens": f"p{60 + i % 5} p55 p52 p48 " * 4} for i in range(40)]
    assign_splits(chorales)
    by_melody: dict[str, set[str]] = {}
    for c in chorales:
        by_melody.setdefault(c["tokens"], set()).add(c["split"])
    assert all(len(s) == 1 for s in by_melody.values()) and len({c["split"] for c in chorales}) == 3


def test_harmonisation_keeps_the_soprano_exactly(real):
    _, mode, grid = real[2]
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=len(VOCAB), block_size=65, n_layer=1, n_head=2, n_embd=16))
    soprano = [step[0] for step in grid[:48]]  # three bars: past the one-bar context, so the window jumps
    out = sample_grids(model, mode, 48, 2, seed=0, given=soprano_given([soprano, soprano]))
    for harmonised in out:
        assert [step[0] for step in harmonised] == soprano
        assert all(t in ("_", "r") or t.startswith("p") for step in harmonised for t in step)


def test_rules_mask_refuses_exactly_the_parallel_out_of_range_and_crossing_notes():
    from genlab.data.chorale_tokens import IDS
    from genlab.tasks.chorale.rules import rules_mask

    before = torch.tensor([[72, 64, 55, 48]])  # C5 E4 G3 C3: soprano and bass an octave (mod 12), tenor-bass a fifth
    now = torch.tensor([[74, 65, 57, -1]])  # soprano D5, alto F4, tenor A3 drawn; the bass to choose
    bad = rules_mask(before, now, voice=3)[0]
    assert bad[IDS["p50"]]  # D3: octaves with the soprano (and fifths with the tenor)
    assert bad[IDS["p38"]] and bad[IDS["p61"]]  # under E2 / over C4: out of the bass range
    assert not bad[IDS["p43"]] and not bad[IDS["p53"]] and not bad[IDS["_"]] and not bad[IDS["r"]]
    assert bad[IDS["p58"]]  # over the tenor's A3
    assert not rules_mask(before, torch.tensor([[74, 65, 60, -1]]), 3)[0][IDS["p58"]]  # under a tenor C4
    held = rules_mask(torch.tensor([[72, 64, 55, 50]]), torch.tensor([[72, 64, 48, -1]]), 3)[0]
    assert held[IDS["_"]] and not held[IDS["r"]]  # the tenor went under the held D3: holding would cross


@pytest.mark.parametrize("melody", [False, True])
def test_rules_sampling_writes_no_parallels_range_violations_or_crossings(real, melody):
    _, mode, grid = real[1]
    torch.manual_seed(1)
    model = Transformer(TransformerConfig(vocab_size=len(VOCAB), block_size=65, n_layer=1, n_head=2, n_embd=16))
    given = soprano_given([[step[0] for step in grid[:48]]] * 4) if melody else None
    free = sample_grids(model, mode, 48, 4, seed=0, given=given, sampling="free")
    ruled = sample_grids(model, mode, 48, 4, seed=0, given=given, sampling="rules")
    counts = voice_leading(free)
    assert counts["parallel_fifths_octaves_per_100_beats"] > 0 and counts["voice_crossings_per_100_beats"] > 0
    for g in ruled:
        lower = [[step[v] if v else "r" for v, _ in enumerate(step)] for step in g] if melody else g
        assert parallels(g) == (0, 0) and range_violations(lower) == 0 and crossings(g) == 0


def write_melody(path: Path, pitches: list[str], parts: int = 1) -> Path:
    from music21 import meter, note, stream

    score = stream.Score()
    for _ in range(parts):
        part = stream.Part([meter.TimeSignature("4/4")] + [note.Note(p, quarterLength=1) for p in pitches])
        score.insert(0, part)
    score.write("musicxml", fp=str(path))
    return path


def test_generate_harmonises_a_melody_file_keeping_it(tiny, tmp_path):
    import genlab

    melody = write_melody(tmp_path / "s.musicxml", ["G4", "G4", "A4", "B4", "D5", "C5", "B4", "A4"])
    out = genlab.load(tiny).generate(melody=str(melody), n=2, seed=3)
    assert out.mode == "major" and len(out) == 2
    soprano = [[m + out.shift for _, _, m in voice_notes(g, 0) if m is not None] for g in out.grids]
    assert soprano == [[67, 67, 69, 71, 74, 72, 71, 69]] * 2  # G major: written back in G
    assert main(["generate", str(tiny), "--melody", str(melody), "--out", str(tmp_path / "h.mid")]) == 0


def test_a_prompt_opening_is_kept(tiny):
    import genlab

    out = genlab.load(tiny).generate(prompt="<minor> p69 p64 p60 p45 _ _ _ _", bars=1, n=2, seed=0)
    assert out.mode == "minor" and all(g[:2] == [["p69", "p64", "p60", "p45"], ["_"] * 4] for g in out.grids)


@pytest.mark.parametrize(
    "kind, message",
    [
        ("high", "outside the soprano range"),
        ("malformed", "not a score music21 can read"),
        ("two parts", "2 parts"),
        ("missing", "no such file"),
        ("option", "does not take meter"),
        ("prompt", "a chorale prompt is grid tokens after one mode token"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tiny, tmp_path, capsys, kind, message):
    melody = tmp_path / "s.musicxml"
    if kind == "high":
        write_melody(melody, ["C6", "E6", "G6", "C7"])
    elif kind == "malformed":
        melody.write_text("<?xml version='1.0'?><score-partwise><part id='P1'><measure>", encoding="utf-8")
    elif kind == "two parts":
        write_melody(melody, ["C5", "D5", "E5", "C5"], parts=2)
    options = {"option": ["--meter", "6/8"], "prompt": ["--prompt", "p60 <minor>"]}.get(kind, ["--melody", str(melody)])
    before = snapshot(tiny)
    out = tmp_path / "h.mid"
    assert main(["generate", str(tiny), *options, "--out", str(out)]) == 2
    one_error_line(capsys, message)
    assert not out.exists() and snapshot(tiny) == before


def test_the_chorale_and_folk_vocabularies_share_the_pad_id_the_shared_loss_skips():
    from genlab.data.chorale_tokens import PAD_ID
    from genlab.tasks.folk.process import PAD_ID as FOLK_PAD_ID

    assert PAD_ID == FOLK_PAD_ID == 0


def test_eval_scores_an_lstm_for_the_cpu_time_asked_and_both_samplers(tiny):
    import json

    assert main(["eval", str(tiny), "--n", "2", "--lstm", "0.5"]) == 0
    report = json.loads((tiny / "report.json").read_text())["test"]
    lstm = report["baselines"]["lstm"]
    assert lstm["steps"] >= 1 and lstm["cpu_seconds"] >= 0.5 and lstm["nll_per_token"] > 0
    assert report["generated"]["parallel_fifths_octaves_per_100_beats"] == 0  # the rules sampler
    assert report["generated"]["range_violations_per_100_beats"] == 0
    assert "parallel_fifths_octaves_per_100_beats" in report["generated_free"]
