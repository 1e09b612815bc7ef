"""The playground's speech panel in headless Chromium against a real server and a tiny tts run: the card says
the model speaks, Speak puts a WAV in the player with the latency and cost line, refused input is the error line."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from genlab.serve import create_app
from tests.serving import running_server
from tests.test_playground import COST, LATENCY, playground_on
from tests.test_speech import tiny_tts  # noqa: F401 (a fixture)

SCREENSHOT = os.environ.get("GENLAB_SPEECH_SCREENSHOT")  # a path: keep the panel's picture (docs/img)


@pytest.fixture(scope="module")
def page(tiny_tts):  # noqa: F811
    _, handle = tiny_tts
    with running_server(create_app({"allison": handle})) as url, playground_on(url, height=640) as page:
        yield page


def speak(page, text: str) -> None:
    page.fill("#speech-text", text)
    page.click("#generate")


def test_speak_plays_the_sentence_and_refusals_are_one_line(page):
    expect(page.locator("#speech-panel")).to_be_visible()
    expect(page.locator("#audio-panel")).to_be_hidden()
    expect(page.locator("#generate")).to_have_text("Speak")
    expect(page.locator("#model-info")).to_contain_text("POST /v1/audio/speech")
    speak(page, "Thank you for calling.")
    expect(page.locator("#speech")).to_be_visible()
    expect(page.locator("#speech-info")).to_contain_text(" s · ")  # the player has read the WAV's header
    assert page.evaluate("$('speech-audio').duration") > 0.3
    wav = page.evaluate(
        "fetch($('speech-audio').src).then(r => r.arrayBuffer()).then(b => [b.byteLength, "
        "String.fromCharCode(...new Uint8Array(b, 8, 4))])"
    )
    assert wav[1] == "WAVE" and wav[0] > 44
    expect(page.locator("#latency")).to_have_text(LATENCY)
    expect(page.locator("#cost")).to_have_text(COST)
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)

    for text, expected in (("", "input"), ("Hi ☃", "cannot say"), ("word " * 300, "at most 1,000")):
        speak(page, text)
        expect(page.locator("#error")).to_contain_text(expected)
        expect(page.locator("#result")).to_be_hidden()  # no stale clip next to the error
    speak(page, "Goodbye.")  # the panel recovers after a refusal
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#speech")).to_be_visible()
