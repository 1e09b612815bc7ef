"""Text-to-speech and voice conversion (task tts): the Allison transcripts, the features and DTW, a tiny run
that says a sentence and converts a recording, `POST /v1/audio/speech` through the openai client, bad input."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import soundfile as sf

from genlab import api
from genlab.cli import main
from genlab.data.speech import (
    RATE,
    TRANSCRIPTS,
    VOICE_DIR,
    check_text,
    load_prompts,
    normalise,
    parse_transcripts,
    read_prompt,
)
from genlab.data.speech_features import (
    HOP,
    N_MELS,
    dtw_path,
    filter_toward,
    griffin_lim,
    log_mel,
    mel_cepstral_distortion,
    warp_to_source,
)
from genlab.errors import GenlabError
from genlab.io.audio import write_wav
from genlab.tasks import TASKS
from tests.conftest import one_error_line

needs_corpus = pytest.mark.skipif(
    not TRANSCRIPTS.is_file() or not VOICE_DIR.is_dir(),
    reason="the Allison corpus is not installed (Debian: asterisk-core-sounds-en-wav)",
)
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (Debian: espeak-ng)"
)


@needs_corpus
def test_the_transcripts_parse_and_split_by_sentence():
    prompts = load_prompts()
    assert 500 <= len(prompts) <= 570
    by_name = {p.name: p for p in prompts}
    assert by_name["auth-thankyou"].text == "Thank you."
    assert by_name["vm-intro"].text.endswith("press the pound key.")  # "(simple tone sound plays)" dropped
    assert not any(name.startswith("silence/") for name in by_name)  # no words in them
    train, test = load_prompts("train"), load_prompts("test")
    assert len(train) + len(test) == len(prompts) and 0.05 < len(test) / len(prompts) < 0.15
    assert not {p.words for p in train} & {p.words for p in test}  # whole sentences held out
    assert [p.name for p in load_prompts("test")] == [p.name for p in test]  # a fixed split


def test_the_transcript_parser_refuses_a_line_without_a_name():
    assert parse_transcripts("; comment\n\nbeep: [tone]\nvm-goodbye: Goodbye.\n") == {
        "beep": "[tone]",
        "vm-goodbye": "Goodbye.",
    }
    with pytest.raises(GenlabError, match="line 2"):
        parse_transcripts("a: b\nno name here\n")
    assert normalise("Call-Forward on Busy.") == "call forward on busy"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a" * 10_000, "10,000 characters"),
        ("Hello ☃", "SNOWMAN"),
        ("你好", "cannot say"),
        ("...", "no letter"),
    ],
)
def test_text_the_front_end_cannot_say_is_one_line(text, message):
    with pytest.raises(GenlabError, match=message) as error:
        check_text(text)
    assert "\n" not in str(error.value)


def test_mel_and_audio_shapes_and_alignment():
    t = np.arange(RATE) / RATE
    chirp = np.sin(2 * np.pi * (300 + 600 * t) * t).astype(np.float32)  # 1 s rising tone
    frames = log_mel(chirp)
    assert frames.shape == (RATE // HOP + 1, N_MELS) and frames.dtype == np.float32
    wave = griffin_lim(frames, n_iter=4)
    assert wave.shape == (RATE,) and np.abs(wave).max() == pytest.approx(0.9, abs=1e-3)
    slow = np.repeat(frames, 2, axis=0)  # the same sound at half speed: each frame twice
    path = dtw_path(frames, slow)
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (len(frames) - 1, len(slow) - 1)
    assert (np.diff(path, axis=0) >= 0).all()  # monotonic
    for i in (10, len(frames) // 2, len(frames) - 10):  # frame i of one is frame 2i or 2i + 1 of the other
        assert set(path[path[:, 0] == i, 1]) <= {2 * i - 1, 2 * i, 2 * i + 1, 2 * i + 2}
    assert warp_to_source(frames, slow).shape == frames.shape
    np.testing.assert_allclose(warp_to_source(frames, frames), frames)


@pytest.fixture(scope="module")
def tiny_tts(tmp_path_factory):
    if not (TRANSCRIPTS.is_file() and shutil.which("espeak-ng")):
        pytest.skip("needs the Allison corpus (asterisk-core-sounds-en-wav) and espeak-ng")
    folder = tmp_path_factory.mktemp("tts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_DATA_DIR", str(folder / "data"))
        tiny = TASKS["tts"].tiny(folder)
        run = api.fit(tiny.recipe, folder / "run", tiny.overrides)[0]
    return run, api.load(run)


@needs_espeak
def test_a_sentence_is_a_16khz_wav_of_its_length(tiny_tts, tmp_path):
    run, handle = tiny_tts
    out = tmp_path / "hello.wav"
    assert main(["generate", str(run), "--text", "Your call is important to us.", "--out", str(out)]) == 0
    samples, rate = sf.read(out)
    assert rate == 16_000
    espeak_seconds = len(check_and_say(handle, "Your call is important to us.")) / RATE
    assert len(samples) / rate == pytest.approx(espeak_seconds, abs=0.02)  # the front end's timing, kept


@needs_espeak
def test_every_vocoder_says_the_sentence_at_its_length(tiny_tts):
    from genlab.tasks.tts.process import Vocoder, speak

    _, handle = tiny_tts
    assert handle.vocoder.name == "griffin-lim"  # the default
    waves = {}
    for name in ("world", "griffin-lim", "differential"):
        vocoder = Vocoder(name, handle.target, handle.rate_wpm, griffin_lim_iters=2)
        waves[name], frames = speak(handle.converter, handle.voices[0], "Goodbye.", handle.rate_wpm, vocoder)
        assert len(waves[name]) == 2 * (len(frames) - 1) * HOP  # 16 kHz out of 8 kHz frames
    assert not np.allclose(waves["world"], waves["griffin-lim"])
    assert not np.allclose(waves["differential"], waves["griffin-lim"])


def check_and_say(handle, text):
    from genlab.data.speech import synthesize

    return synthesize(handle.voices[0], text, handle.rate_wpm)


@needs_corpus
def test_a_recording_converts_and_bad_uploads_are_one_line(tiny_tts, tmp_path, capsys):
    run, handle = tiny_tts
    recording = read_prompt(load_prompts("test")[1])
    write_wav(tmp_path / "in8k.wav", recording, RATE)
    clip = handle.generate(input=str(tmp_path / "in8k.wav"))
    assert clip.sample_rate == 16_000 and abs(len(clip.waves[0]) - 2 * len(recording)) <= 2 * HOP
    (tmp_path / "notes.wav").write_text("not audio at all")
    write_wav(tmp_path / "in22k.wav", np.zeros(22050, dtype=np.float32) + 0.1, 22050)
    for name, expected in (("notes.wav", "not a readable WAV"), ("in22k.wav", "22050 Hz")):
        code = main(["generate", str(run), "--input", str(tmp_path / name), "--out", str(tmp_path / "x.wav")])
        assert code == 2
        one_error_line(capsys, expected)
    assert main(["generate", str(run), "--text", "Hi ☃", "--out", str(tmp_path / "x.wav")]) == 2
    one_error_line(capsys, "cannot say")
    assert not (tmp_path / "x.wav").exists()


@needs_espeak
def test_the_speech_endpoint_through_the_openai_client(tiny_tts):
    openai = pytest.importorskip("openai")
    from genlab.serve.app import create_app
    from tests.serving import running_server

    _, handle = tiny_tts
    with running_server(create_app({"allison": handle}, api_key="k")) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        speech = client.audio.speech.create(model="allison", voice="allison", input="Goodbye.", response_format="wav")
        samples, rate = sf.read(io.BytesIO(speech.content))
        assert rate == 16_000 and 0.3 < len(samples) / rate < 3
        for text, expected in (("", "input"), ("x" * 10_000, "input"), ("☃☃", "cannot say")):
            with pytest.raises(openai.UnprocessableEntityError) as error:
                client.audio.speech.create(model="allison", voice="allison", input=text, response_format="wav")
            assert expected in error.value.body["message"]
        with pytest.raises(openai.UnprocessableEntityError, match="voice"):
            client.audio.speech.create(model="allison", voice="alloy", input="Hello.", response_format="wav")
        with pytest.raises(openai.NotFoundError):
            client.audio.speech.create(model="nobody", voice="allison", input="Hello.", response_format="wav")


@needs_corpus
def test_the_judge_names_the_sentence_a_recording_says():
    pytest.importorskip("pocketsphinx", reason="the judge needs pocketsphinx (pip install pocketsphinx)")
    from genlab.evaluation.speech import SentenceJudge, spoken_words, word_error_rate

    prompts = {p.name: p for p in load_prompts()}
    chosen = [prompts[n] for n in ("vm-goodbye", "auth-thankyou", "vm-nobodyavail", "privacy-prompt")]
    judge = SentenceJudge([p.text for p in chosen] + ["press 1 to record"])
    assert judge.knows("Press 1 to record.") and spoken_words("Press 1 to record.") == "press one to record"
    said = chosen[2]
    assert judge.identify(read_prompt(said)) == spoken_words(said.text)
    assert word_error_rate(["press one"], ["press two"]) == 0.5


@needs_corpus
def test_the_judge_hears_a_clip_alike_whether_it_comes_first_or_after_others():
    """Each clip is decoded from a fresh front end. Without it, "Goodbye" is heard otherwise after a noise burst
    than first (the recogniser's running noise and cepstral-mean estimates carry over from clip to clip), and a
    WER depends on the order the clips are decoded in."""
    pytest.importorskip("pocketsphinx", reason="the judge needs pocketsphinx (pip install pocketsphinx)")
    from genlab.evaluation.speech import SentenceJudge

    prompts = {p.name: p for p in load_prompts()}
    clip = read_prompt(prompts["vm-goodbye"])
    noise = 0.3 * np.random.default_rng(0).standard_normal(RATE).astype(np.float32)
    judge = SentenceJudge([prompts["vm-goodbye"].text])
    first = judge.transcribe(clip), judge.identify(clip)
    for other in (noise, clip):
        judge.transcribe(other)
    assert (judge.transcribe(clip), judge.identify(clip)) == first


def _voice(rng: np.random.Generator, formant_hz: float) -> np.ndarray:
    """0.5 s at 8 kHz of a 120 Hz buzz through one resonance near formant_hz: a toy speaker."""
    from scipy.signal import lfilter

    buzz = (np.arange(4000) % (8000 // 120) == 0).astype(np.float64) + 0.01 * rng.standard_normal(4000)
    r, theta = 0.97, 2 * np.pi * (formant_hz + rng.normal(0, 40)) / 8000
    return lfilter([1.0], [1, -2 * r * np.cos(theta), r * r], buzz).astype(np.float32)


def test_the_differential_vocoder_moves_the_envelope_and_keeps_the_recording():
    rng = np.random.default_rng(0)
    source, target = _voice(rng, 600.0), _voice(rng, 1800.0)  # one buzz, two resonances
    same = filter_toward(log_mel(source), source)  # filtered toward its own envelope: the recording itself
    assert same.shape == griffin_lim(log_mel(source), n_iter=1).shape  # a drop-in for Griffin-Lim
    np.testing.assert_allclose(same, source[: len(same)] * (0.9 / np.abs(source).max()), atol=1e-4)
    moved = filter_toward(log_mel(target), source)
    before, after = (
        mel_cepstral_distortion(log_mel(source), log_mel(target)),
        mel_cepstral_distortion(log_mel(moved), log_mel(target)),
    )
    assert after < 0.5 * before  # the envelope went most of the way to the target's
    spectrum = np.abs(np.fft.rfft(moved, 2 * len(moved))) ** 2
    lags = np.fft.irfft(spectrum)[40:100]  # autocorrelation: the excitation stays the source's pulse train
    assert np.argmax(lags) + 40 == RATE // 120


def test_the_channel_robust_speaker_judge_learns_both_versions_and_ignores_the_channel():
    from genlab.evaluation.speech import SpeakerClassifier, griffin_lim_channel

    rng = np.random.default_rng(0)
    real, fake = [_voice(rng, 600) for _ in range(12)], [_voice(rng, 1400) for _ in range(12)]
    channel = griffin_lim_channel(n_iter=4)
    judge = SpeakerClassifier(real[:8], fake[:8], channel=channel)
    assert judge.train_clips == 32 and judge.train_labels.tolist() == [1] * 8 + [0] * 8 + [1] * 8 + [0] * 8
    held_real, held_fake = real[8:], fake[8:]
    for clips, label in ((held_real, True), (held_fake, False)):
        assert (judge.is_real(clips) == label).all()  # as recorded
        assert (judge.is_real([channel(c) for c in clips]) == label).all()  # through the channel: same label
