"""POST /v1/music/generations against a real server and a tiny chorale run: the card lists the options a
request may set (never a file's), the answer is a WAV, a piano-roll PNG and a MIDI file that music21 reads back,
and a bad option is one 422 line that names it."""

from __future__ import annotations

import base64
import json
import shutil
import urllib.error
import urllib.request

import pytest

import genlab
from genlab.serve import create_app
from tests.serving import running_server
from tests.test_chorale import tiny  # noqa: F401 (a fixture)

if shutil.which("fluidsynth") is None:
    pytest.skip("rendering audio needs the fluidsynth program (Debian package fluidsynth)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tiny):  # noqa: F811
    with running_server(create_app({"chorales": genlab.load(tiny)})) as url:
        yield url


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/v1/music/generations", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_card_lists_the_plain_options_and_no_file_option(server):
    with urllib.request.urlopen(f"{server}/v1/models/chorales") as response:
        card = json.load(response)
    assert card["music"]["mode"] == "major" and card["music"]["bars"] == 16 and card["music"]["sampling"] == "rules"
    assert not {"melody", "prompt", "n", "seed"} & set(card["music"])


def test_music_comes_as_wav_png_and_midi_that_music21_reads(server, tmp_path):
    from music21 import converter

    status, answer = post(server, {"model": "chorales", "n": 2, "seed": 1, "options": {"mode": "minor", "bars": "2"}})
    assert status == 200 and answer["pieces"] == 2
    wav, png, mid = (base64.b64decode(answer[k]) for k in ("wav", "png", "mid"))
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and png[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "m.mid").write_bytes(mid)
    assert len(converter.parse(tmp_path / "m.mid").parts) == 4  # soprano, alto, tenor, bass


@pytest.mark.parametrize(
    "body, message",
    [
        ({"options": {"mode": "lydian"}}, "unknown mode 'lydian'"),
        ({"options": {"melody": "/etc/hostname"}}, "options.melody: this model takes"),
        ({"options": {"bars": "two"}}, "options.bars: 'two' is not a int"),
        ({"options": {"bars": 2.5}}, "options.bars: 2.5 is not a int"),
        ({"n": 5}, "n: Input should be less than or equal to 4"),
        ({"model": "nobody"}, "no model named 'nobody'"),
    ],
)
def test_a_bad_request_is_one_line_naming_what_is_wrong(server, body, message):
    status, answer = post(server, {"model": "chorales", **body})
    assert status in (404, 422) and message in answer["error"]["message"]
