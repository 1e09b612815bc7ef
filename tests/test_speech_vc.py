"""Voice conversion into a chosen target voice (task tts, data.target): the pairs it trains on, and a target
that is not a voice refused in one line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from genlab.cli import main
from genlab.data.speech import TRANSCRIPTS, load_prompts, read_prompt, synthesize
from genlab.data.speech_features import log_mel, warp_to_source
from genlab.data.speech_pairs import aligned_pair, parallel_pairs
from tests.conftest import one_error_line, snapshot

needs_voices = pytest.mark.skipif(
    not TRANSCRIPTS.is_file() or shutil.which("espeak-ng") is None or shutil.which("flite") is None,
    reason="needs the Allison corpus (asterisk-core-sounds-en-wav), espeak-ng and flite",
)


@needs_voices
def test_the_target_voice_builds_the_right_pairs(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path))
    prompt = load_prompts("train")[0]
    source, to_flite = aligned_pair("espeak-ng:en-us+f3", prompt, 160, "flite:slt")
    same_source, to_allison = aligned_pair("espeak-ng:en-us+f3", prompt, 160)
    np.testing.assert_array_equal(source, same_source)  # the input voice's frames whatever the target
    flite = log_mel(synthesize("flite:slt", prompt.text, 160))
    np.testing.assert_allclose(to_flite, warp_to_source(source, flite), atol=1e-5)
    np.testing.assert_allclose(to_allison, warp_to_source(source, log_mel(read_prompt(prompt))), atol=1e-5)
    assert np.abs(to_flite - to_allison).mean() > 0.5  # two different voices, two different caches
    cached = aligned_pair("espeak-ng:en-us+f3", prompt, 160, "flite:slt")[1]  # read back from the cache
    np.testing.assert_array_equal(cached, to_flite)
    pairs = parallel_pairs(["espeak-ng:en-us+f3"], [prompt], 160, "flite:slt")
    np.testing.assert_array_equal(pairs.target, to_flite)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("festival:kal", "data.target 'festival:kal' is not a voice"),
        ("bob", "'bob' is not a voice"),
        ("flite:slt", "also in data.voices"),
    ],
)
def test_an_unknown_target_voice_is_one_line(target, expected, tmp_path, capsys):
    before = snapshot(tmp_path)
    code = main(
        [
            "train",
            "vc-espeak-to-flite",
            f"data.target={target}",
            "data.voices=[flite:slt]",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == 2
    one_error_line(capsys, expected)
    assert snapshot(tmp_path) == before
