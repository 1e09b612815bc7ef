"""The audio task's own behaviour, beyond the contract (tests/test_contract.py): what `--label` and
`--text` draw, the WAV files and folders `generate` writes, the spectrogram round trip, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import genlab
from genlab.cli import main
from genlab.data.audio import load_audio_dataset
from genlab.errors import GenlabError
from genlab.io.audio import read_wav
from genlab.io.audio_clips import GRID_NAME
from genlab.models.audio_gan import AudioGANConfig, build_audio_gan
from genlab.tasks.audio.spectrogram import (
    CLIP_SAMPLES,
    FRAMES,
    GAP_SECONDS,
    N_MELS,
    SAMPLE_RATE,
    image_to_wave,
    join_words,
    log_mel_image,
    trim_word,
)
from genlab.tasks.audio.tiny import tiny_run
from tests.conftest import one_error_line


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    tiny = tiny_run(folder)
    assert main(["train", tiny.recipe, *tiny.overrides, "--out", str(folder / "run")]) == 0
    return folder / "run"


def test_label_picks_the_digit_and_default_cycles(run):
    handle = genlab.load(run)
    assert handle.class_names == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    assert handle.generate(n=3, label=7).words == ["seven"] * 3
    clips = handle.generate(n=12)
    assert clips.words == [handle.class_names[i % 10] for i in range(12)]
    assert clips.numpy().shape == (12, CLIP_SAMPLES) and clips.numpy().dtype == np.float32
    assert np.abs(clips.numpy()).max() <= 1


def test_text_is_one_clip_of_the_digits_in_sequence(run):
    handle = genlab.load(run)
    clip = handle.generate(text="4 zero 7", seed=3)
    assert len(clip) == 1 and clip.words == ["four zero seven"]
    # the same words drawn one by one (the same noise stream), trimmed, joined with two gaps
    alone = handle.generate_audio([{"n": 1, "label": d, "seed": 3} for d in (4, 0, 7)])
    parts = [trim_word(a.waves[0]) for a in alone]
    gap = round(GAP_SECONDS * SAMPLE_RATE)
    assert len(clip.waves[0]) == sum(len(p) for p in parts) + 2 * gap
    assert handle.generate(text="four 0 seven", seed=3).numpy().tobytes() == clip.numpy().tobytes()


def test_generate_writes_a_wav_and_a_folder(run, tmp_path, capsys):
    assert main(["generate", str(run), "--label", "2", "--n", "1", "--out", str(tmp_path / "two.wav")]) == 0
    samples, rate = read_wav(tmp_path / "two.wav")
    assert rate == SAMPLE_RATE and samples.shape == (CLIP_SAMPLES,)
    assert main(["generate", str(run), "--text", "1 2 3", "--out", str(tmp_path / "phone.wav")]) == 0
    assert len(read_wav(tmp_path / "phone.wav")[0]) > CLIP_SAMPLES // 4
    assert main(["generate", str(run), "--n", "3", "--out", str(tmp_path / "clips")]) == 0
    names = sorted(p.name for p in (tmp_path / "clips").iterdir())
    assert names == ["00-zero.wav", "01-one.wav", "02-two.wav", GRID_NAME]
    # the API writes the same bytes as the CLI
    genlab.load(run).generate(n=3).save(tmp_path / "api")
    assert (tmp_path / "api" / "01-one.wav").read_bytes() == (tmp_path / "clips" / "01-one.wav").read_bytes()
    # saved again with fewer clips: the folder holds this call's clips, and a file of the user's stays
    (tmp_path / "clips" / "notes.wav").write_bytes(b"mine")
    assert main(["generate", str(run), "--label", "5", "--n", "2", "--out", str(tmp_path / "clips")]) == 0
    names = sorted(p.name for p in (tmp_path / "clips").iterdir())
    assert names == ["00-five.wav", "01-five.wav", "notes.wav", GRID_NAME]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--label", "10"], "--label must be in 0..9"),
        (["--text", "four banana"], "'banana' is not a digit"),
        (["--text", "12"], "'12' is not a digit"),
        (["--text", " "], "--text is empty"),
        (["--text", "4", "--label", "4"], "not both"),
        (["--n", "0"], "--n must be at least 1"),
        (["--n", "2", "--out", "{tmp}/two.wav"], "2 clips need a folder"),
        (["--out", "{tmp}/clips.mp3"], "ending in .wav (or a FOLDER)"),
    ],
)
def test_bad_input_is_one_line(run, tmp_path, capsys, argv, expected):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out = [] if "--out" in argv else ["--out", str(tmp_path / "x.wav")]
    assert main(["generate", str(run), *argv, *out]) == 2
    one_error_line(capsys, expected)
    assert not any(tmp_path.iterdir())  # nothing written


def test_bad_text_through_the_api_is_a_genlab_error(run):
    with pytest.raises(GenlabError, match="'ten' is not a digit"):
        genlab.load(run).generate(text="nine ten")


def test_spectrogram_round_trip_keeps_the_image(run):
    """Spoken digits -> image -> Griffin-Lim -> image again: the waveform path keeps what the image says."""
    clips = torch.from_numpy(load_audio_dataset("spoken-digits", "train", str(run.parent / "tiny-digits")).waves[:5])
    image = log_mel_image(clips)
    assert image.shape == (5, N_MELS, FRAMES) and image.min() >= -1 and image.amax(dim=(1, 2)).eq(1).all()
    waves = image_to_wave(image)
    assert waves.shape == (5, CLIP_SAMPLES) and torch.allclose(waves.abs().amax(dim=1), torch.tensor(0.9))
    assert (log_mel_image(waves) - image).abs().mean() < 0.06


def test_join_words_puts_gaps_between_words():
    words = [torch.ones(100), torch.ones(50), torch.ones(7)]
    joined = join_words(words)
    gap = round(GAP_SECONDS * SAMPLE_RATE)
    assert len(joined) == 157 + 2 * gap and joined[100 : 100 + gap].abs().sum() == 0


def test_training_leaves_grids_and_a_wav_per_sample_period(run):
    names = sorted(p.name for p in (run / "samples").iterdir())
    assert "epoch_0002.png" in names and "epoch_0002.wav" in names
    meta = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())
    assert meta["task"] == "audio" and meta["class_names"][4] == "four"


@pytest.mark.parametrize("g_conditioning, d_conditioning", [("batchnorm", "projection"), ("input", "concat")])
def test_both_conditionings_give_spectrogram_shapes(g_conditioning, d_conditioning):
    config = AudioGANConfig(latent_dim=8, width=4, g_conditioning=g_conditioning, d_conditioning=d_conditioning)
    generator, discriminator = build_audio_gan(config)
    labels = torch.tensor([0, 3, 9])
    specs = generator(torch.randn(3, 8), labels)
    assert specs.shape == (3, 1, N_MELS, FRAMES) and specs.abs().max() <= 1
    assert discriminator(specs, labels).shape == (3,)
