"""The playground's music panel in headless Chromium against a real server and a tiny chorale run: a field per
option of the card, Generate shows the piano roll, puts the WAV in the player and offers the MIDI file, and a
refused option is the error line."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

import genlab
from genlab.serve import create_app
from tests.serving import running_server
from tests.test_chorale import tiny  # noqa: F401 (a fixture)
from tests.test_playground import LATENCY, playground_on

SCREENSHOT = os.environ.get("GENLAB_MUSIC_SCREENSHOT")  # a path: keep the panel's picture (docs/img)


@pytest.fixture(scope="module")
def page(tiny):  # noqa: F811
    with running_server(create_app({"chorales": genlab.load(tiny)})) as url, playground_on(url, height=760) as page:
        yield page


def test_the_music_panel_plays_and_shows_what_it_made_and_refusals_are_one_line(page):
    expect(page.locator("#music-panel")).to_be_visible()
    expect(page.locator("#text-panel")).to_be_hidden()
    expect(page.locator("#stop")).to_be_hidden()
    expect(page.locator("#model-info")).to_contain_text("POST /v1/music/generations")
    expect(page.locator("input[data-option=mode]")).to_have_value("major")
    page.fill("input[data-option=bars]", "2")
    page.fill("input[data-option=mode]", "minor")
    page.click("#generate")
    expect(page.locator("#music")).to_be_visible(timeout=60_000)  # the first answer imports music21, matplotlib
    expect(page.locator("#music-info")).to_contain_text(" s")  # the player has read the WAV's header
    assert page.evaluate("$('music-audio').duration") > 1.0
    assert page.evaluate("$('music-roll').naturalWidth") > 100  # the PNG decoded
    assert page.get_attribute("#music-midi", "href").startswith("data:audio/midi;base64,TVRoZ")  # "MThd"
    expect(page.locator("#latency")).to_have_text(LATENCY)
    expect(page.locator("#cost")).to_have_text(re.compile(r"^\d+(\.\d+)? (ms|s)$"))  # seconds; no FLOPs counted
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)

    page.fill("input[data-option=mode]", "lydian")
    page.click("#generate")
    expect(page.locator("#error")).to_contain_text("unknown mode 'lydian'")
    expect(page.locator("#result")).to_be_hidden()
