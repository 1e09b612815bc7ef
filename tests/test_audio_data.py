"""Spoken digits: WAV I/O, fit_clip, the synthesizer on a tiny subset, user folders and their one-line errors."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genlab.cli import main
from genlab.data import audio
from genlab.data.audio import DIGITS, SPEAKERS, AudioData, load_audio_dataset, synthesize
from genlab.errors import GenlabError
from genlab.io.audio import PEAK, SAMPLE_RATE, fit_clip, read_wav, resample, write_wav
from genlab.io.files import read_json

needs_engines = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("flite")), reason="needs Debian espeak-ng and flite"
)
# Two train and two held-out speakers, both engines.
TINY = [
    next(s for s in SPEAKERS if s.name == name)
    for name in ("espeak-ng:en-us", "espeak-ng:en-gb+m1", "flite:slt", "flite:rms")
]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny subset synthesized twice: in a pool of 2 and in one process."""
    if not (shutil.which("espeak-ng") and shutil.which("flite")):
        pytest.skip("needs Debian espeak-ng and flite")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_OFFLINE", "1")
        mp.setenv("GENLAB_DATA_DIR", str(tmp_path_factory.mktemp("audio-data-cache")))
        a, b = tmp_path_factory.mktemp("tiny-a"), tmp_path_factory.mktemp("tiny-b")
        synthesize(a, TINY, workers=2, progress=False)
        synthesize(b, TINY, workers=1, progress=False)
        return a, b


def tone(seconds: float, freq: float = 440.0, rate: int = SAMPLE_RATE, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_folder(root: Path, layout: dict[str, int], rate: int = SAMPLE_RATE) -> Path:
    """root/<label>/<n>.wav for each label -> count; every clip a different tone."""
    for label, count in layout.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for n in range(count):
            write_wav(root / label / f"{n}.wav", tone(0.4, 200 + 37 * n + 11 * len(label)), rate)
    return root


# --- io ------------------------------------------------------------------------------------------------------


def test_wav_round_trip_within_16_bit_quantisation(tmp_path):
    samples = np.random.default_rng(0).uniform(-1, 1, 4000).astype(np.float32)
    path = write_wav(tmp_path / "x.wav", samples, 22050)
    back, rate = read_wav(path)
    assert rate == 22050 and back.dtype == np.float32 and back.shape == samples.shape
    assert np.abs(back - samples).max() <= 0.5 / 32768 + 1e-7
    assert sf.info(str(path)).subtype == "PCM_16"
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no temporary left behind


def test_stereo_is_averaged(tmp_path):
    left, right = tone(0.1), np.zeros(1600, dtype=np.float32)
    sf.write(str(tmp_path / "s.wav"), np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")
    mono, _ = read_wav(tmp_path / "s.wav")
    np.testing.assert_allclose(mono, left / 2, atol=1e-6)


def test_read_wav_refuses_other_files(tmp_path):
    (tmp_path / "fake.wav").write_text("not audio")
    with pytest.raises(GenlabError, match="fake.wav") as err:
        read_wav(tmp_path / "fake.wav")
    assert "\n" not in str(err.value)
    sf.write(str(tmp_path / "x.flac"), tone(0.1), SAMPLE_RATE)
    with pytest.raises(GenlabError, match="x.flac is not a WAV file"):
        read_wav(tmp_path / "x.flac")
    with pytest.raises(GenlabError, match="no such file"):
        read_wav(tmp_path / "missing.wav")


def test_resample_keeps_the_pitch():
    low = tone(0.5, 440.0, rate=8000)
    high = resample(low, 8000, SAMPLE_RATE)
    assert len(high) == 2 * len(low) and high.dtype == np.float32
    freqs = np.fft.rfftfreq(len(high), 1 / SAMPLE_RATE)
    assert abs(freqs[np.abs(np.fft.rfft(high)).argmax()] - 440) < 3


def test_fit_clip_trims_centres_and_normalises():
    signal = np.concatenate([np.zeros(3200), tone(0.3), np.zeros(8000)]).astype(np.float32)  # 0.2 + 0.3 + 0.5 s
    out = fit_clip(signal)
    assert out.shape == (16000,) and out.dtype == np.float32
    assert np.isclose(np.abs(out).max(), PEAK)
    loud = np.flatnonzero(np.abs(out) > 1e-3)
    assert abs((loud[0] + loud[-1]) / 2 - 8000) < 200  # the tone sits in the middle
    assert np.array_equal(out, fit_clip(signal))  # deterministic
    assert fit_clip(tone(2.0)).shape == (16000,)  # a long sound keeps its middle second
    assert fit_clip(tone(0.2), length=4000).shape == (4000,)
    assert not fit_clip(np.zeros(500, dtype=np.float32)).any()
    with pytest.raises(GenlabError, match="non-finite"):
        fit_clip(np.array([0.1, np.nan], dtype=np.float32))


# --- the synthesized corpus --------------------------------------------------------------------------------


def test_speakers_split_spreads_over_engines_and_voices():
    held = [s for s in SPEAKERS if s.held_out]
    assert 150 <= len(SPEAKERS) <= 300 and 0.15 <= len(held) / len(SPEAKERS) <= 0.2
    assert {s.engine for s in held} == {"espeak-ng", "flite"}
    assert {s.voice for s in held} >= set(audio.ESPEAK_ACCENTS)
    assert len({s.name for s in SPEAKERS}) == len(SPEAKERS)


@needs_engines
def test_synthesis_is_deterministic_and_split_by_speaker(tiny_corpus):
    a, b = tiny_corpus
    for name in ("train.npz", "test.npz"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    train, test = (load_audio_dataset(split=s, path=str(a)) for s in ("train", "test"))
    assert len(train) == len(test) == 2 * 10 * 3  # 2 speakers x 10 digits x 3 settings each
    assert train.waves.shape == (60, 16000) and train.waves.dtype == np.float32
    assert not set(train.speakers) & set(test.speakers)
    assert set(test.speakers) == {"espeak-ng:en-us", "flite:rms"}
    assert np.bincount(train.labels).tolist() == [6] * 10 and train.class_names == DIGITS
    assert np.allclose(np.abs(train.waves).max(axis=1), PEAK, atol=1e-4)
    manifest = read_json(a / "manifest.json")
    assert manifest["sample_rate"] == 16000 and manifest["engines"]["espeak-ng"].startswith("eSpeak NG")


@needs_engines
def test_cached_corpus_is_listed_and_checked(tiny_corpus, tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("GENLAB_DATA_DIR", str(cache))
    assert main(["data", "list"]) == 0
    assert "not synthesized yet" in capsys.readouterr().out
    shutil.copytree(tiny_corpus[0], cache / "spoken-digits")
    assert main(["data", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("spoken-digits"))
    assert row.split()[1:5] == ["60", "60", "10", "4"]
    damaged = cache / "spoken-digits" / "test.npz"
    with np.load(damaged) as arrays:
        pcm = arrays["pcm"].copy()
        pcm[0, 8000] += 1
        np.savez(damaged, pcm=pcm, labels=arrays["labels"], speakers=arrays["speakers"])
    with pytest.raises(GenlabError, match="does not match the sha256"):
        load_audio_dataset(split="test", path=str(cache / "spoken-digits"))


def test_missing_espeak_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    for call in (lambda: load_audio_dataset("spoken-digits", "train"), lambda: synthesize(tmp_path, TINY[:1])):
        with pytest.raises(GenlabError, match="espeak-ng is not installed") as err:
            call()
        assert "sudo apt-get install espeak-ng flite" in str(err.value) and "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not audio.HUMAN_DIR.is_dir(), reason="needs Debian asterisk-core-sounds-en-wav")
def test_human_split():
    human = load_audio_dataset("spoken-digits", "human")
    assert human.waves.shape == (10, 16000) and human.labels.tolist() == list(range(10))
    assert len(set(human.speakers)) == 1


def test_bad_names_and_splits(tmp_path):
    with pytest.raises(GenlabError, match="unknown split 'valid'"):
        load_audio_dataset("spoken-digits", "valid")
    with pytest.raises(GenlabError, match="unknown audio dataset 'sc09'"):
        load_audio_dataset("sc09")
    with pytest.raises(GenlabError, match="human split"):
        load_audio_dataset(split="human", path=str(tmp_path))
    with pytest.raises(GenlabError, match="expected \\(3, 16000\\) float32"):
        AudioData("x", "y", np.zeros((3, 100), dtype=np.float32), np.zeros(3, dtype=np.int64), ["a"] * 3)


# --- a user's folder -------------------------------------------------------------------------------------------


def test_user_label_folders(tmp_path):
    folder = write_folder(tmp_path / "mine", {"3": 12, "seven": 12, "Zero": 6})
    train, test = (load_audio_dataset(split=s, path=str(folder)) for s in ("train", "test"))
    assert len(train) + len(test) == 30 and len(test) >= 1
    assert sorted(np.concatenate([train.labels, test.labels]).tolist()) == [0] * 6 + [3] * 12 + [7] * 12
    assert train.waves.shape[1:] == (16000,) and train.source == f"folder {folder}"
    again = load_audio_dataset(split="test", path=str(folder))
    assert np.array_equal(again.waves, test.waves)  # the split is a function of the files


def test_user_csv_with_speakers_splits_by_speaker(tmp_path):
    folder = write_folder(tmp_path / "csv", {"clips": 40})
    with open(folder / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "speaker"])
        for n in range(40):
            writer.writerow([f"clips/{n}.wav", DIGITS[n % 10], f"spk{n // 4}"])
    train, test = (load_audio_dataset(split=s, path=str(folder)) for s in ("train", "test"))
    assert len(train) + len(test) == 40 and not set(train.speakers) & set(test.speakers)


def test_user_folder_errors_are_one_line(tmp_path, capsys):
    cases = {}
    cases["label"] = write_folder(tmp_path / "label", {"3": 1, "eleven": 1})
    cases["rate"] = write_folder(tmp_path / "rate", {"4": 1}, rate=8000)
    cases["notwav"] = write_folder(tmp_path / "notwav", {"5": 1})
    (cases["notwav"] / "5" / "broken.wav").write_bytes(b"RIFF0000garbage")
    cases["suffix"] = write_folder(tmp_path / "suffix", {"6": 1})
    (cases["suffix"] / "6" / "clip.mp3").write_bytes(b"ID3")
    cases["csv"] = write_folder(tmp_path / "csv", {"c": 1})
    (cases["csv"] / "t.csv").write_text("path,label\nc/0.wav,eleven\n")
    expected = {
        "label": "unknown label 'eleven'",
        "rate": "0.wav is sampled at 8000 Hz",
        "notwav": "broken.wav is not a readable WAV file",
        "suffix": "clip.mp3 is not a .wav file",
        "csv": "t.csv line 2: unknown label 'eleven'",
    }
    for case, message in expected.items():
        with pytest.raises(GenlabError, match=message) as err:
            for split in ("train", "test"):
                load_audio_dataset(split=split, path=str(cases[case]))
        assert "\n" not in str(err.value), case
    with pytest.raises(GenlabError, match="no such folder"):
        load_audio_dataset(path=str(tmp_path / "nowhere"))
