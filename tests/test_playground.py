"""The playground at `/` (genlab/serve/static) driven in a real browser against a real server serving tiny
runs: the API-key field, text streamed token by token (and stopped), images, classification bars, the
latency and cost of every answer, and the server's error messages.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("CI"):  # CI installs it (scripts/install-system-data.sh)
    pytest.skip(
        f"no Chromium at {CHROMIUM} (Debian's chromium package) to drive the playground", allow_module_level=True
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from genlab.serve import create_app, open_runs  # noqa: E402
from tests.serving import running_server  # noqa: E402

API_KEY = "playground-test-key"
SERVERS: dict = {}  # url -> app, for a test that needs the server's workers
SERVED = ("lm", "finetune", "gan", "seq2seq", "audio")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LATENCY = re.compile(r"^\d+(\.\d+)? (ms|s)\b")
COST = re.compile(r"^\d+(\.\d+)? (ms|s) · \d+(\.\d)? [kMGTPE]?FLOP$")

# Records the generated text's length every few milliseconds, with the output's state, so that a test sees
# the text grow while the answer streams rather than only its final length.
START_SAMPLING = """() => {
    window.samples = [];
    window.sampler = setInterval(() => {
        const output = document.getElementById("output");
        window.samples.push([document.getElementById("completion").textContent.length, output.dataset.state]);
    }, 4);
}"""
STOP_SAMPLING = "() => { clearInterval(window.sampler); return window.samples; }"


@contextmanager
def playground_on(url: str, height: int) -> Iterator[Page]:
    """The playground at `url` in a headless Chromium of its own (one page, 1040 px wide), failing the test on
    any JavaScript error: for a test module that serves its own runs."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1040, "height": height})
        page.set_default_timeout(15_000)
        errors = []
        page.on("pageerror", lambda error: errors.append(error))
        page.goto(url)
        yield page
        browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def server(served_runs) -> str:
    """The base URL of a server (with an API key) for each kind of tiny run."""
    app = create_app(open_runs([served_runs[name] for name in SERVED]), api_key=API_KEY)
    with running_server(app) as url:
        SERVERS[url] = app
        yield url


@pytest.fixture(scope="module")
def browser() -> Browser:
    expect.set_options(timeout=15_000)  # assertions wait as long as actions: slow CI machines are not failures
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def cards(server) -> dict[str, dict]:
    request = urllib.request.Request(f"{server}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request) as response:
        return {card["id"]: card for card in json.load(response)["data"]}


def new_page(browser: Browser, server: str) -> Page:
    """A fresh browser context (empty localStorage) on the playground, failing the test on any JS error."""
    context = browser.new_context(viewport={"width": 1040, "height": 760})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.js_errors = []  # checked by close(): a handler that raised here would be lost in playwright's loop
    page.on("pageerror", lambda error: page.js_errors.append(error))
    page.goto(server)
    return page


def close(page: Page) -> None:
    page.context.close()
    assert not page.js_errors, f"JavaScript errors on the page: {page.js_errors}"


@pytest.fixture
def page(browser, server) -> Page:
    """The playground with the API key typed in and the models listed."""
    page = new_page(browser, server)
    page.fill("#api-key", API_KEY)
    expect(page.locator("#model option")).to_have_count(len(SERVED))
    yield page
    close(page)


def choose(page: Page, model: str) -> None:
    page.select_option("#model", model)
    expect(page.locator("#model-info")).to_contain_text(model)


def expect_latency_and_cost(page: Page) -> None:
    expect(page.locator("#latency")).to_have_text(LATENCY)
    expect(page.locator("#cost")).to_have_text(COST)


def test_api_key_field_is_sent_as_bearer_and_remembered(browser, server, tmp_path):
    page = new_page(browser, server)
    try:
        expect(page.locator("#error")).to_contain_text("API key")  # the server's 401 message, shown
        page.fill("#api-key", "wrong-key")
        expect(page.locator("#error")).to_contain_text("missing or wrong API key")
        page.fill("#api-key", API_KEY)
        expect(page.locator("#model option")).to_have_count(len(SERVED))
        expect(page.locator("#error")).to_be_hidden()
        options = page.locator("#model option").all_inner_texts()
        assert any(o.startswith("lm — lm, ") and o.endswith(" parameters") for o in options), options
        page.reload()  # the key is kept in localStorage: no retyping after a reload
        expect(page.locator("#api-key")).to_have_value(API_KEY)
        expect(page.locator("#model option")).to_have_count(len(SERVED))
        page.screenshot(path=tmp_path / "key.png")
    finally:
        close(page)


def test_text_streams_token_by_token(page, cards, server, tmp_path, monkeypatch):
    batch = SERVERS[server].state.server.served["lm"].worker.batch
    step = batch.step
    # 2 ms a token spreads 500 tokens over a second or more: on a loaded machine an unhindered stream can end
    # between two of the page's samples, which would say nothing about whether it grew token by token.
    monkeypatch.setattr(batch, "step", lambda: time.sleep(0.002) or step())
    choose(page, "lm")
    expect(page.locator("#prompt")).to_be_visible()
    expect(page.locator("#images")).to_be_hidden()
    page.fill("#prompt", "and darkness ")
    page.fill("#temperature", "0.8")
    page.fill("#top-p", "0.95")
    page.fill("#max-tokens", "500")
    page.fill("#text-seed", "7")
    page.fill("#frequency-penalty", "0.3")
    page.evaluate(START_SAMPLING)
    with page.expect_request("**/v1/completions") as request:
        page.click("#generate")
    assert request.value.post_data_json["frequency_penalty"] == 0.3
    expect(page.locator("#output")).to_have_attribute("data-state", "done")
    samples = page.evaluate(STOP_SAMPLING)
    final = len(page.locator("#completion").text_content())

    streaming = [length for length, state in samples if state == "streaming"]
    assert streaming == sorted(streaming), "the text shrank while streaming"
    seen = sorted(set(streaming) - {0})  # what the page showed before the answer ended
    assert len(seen) >= 3, f"the text did not grow token by token: {seen} before reaching {final}"
    assert final >= seen[-1]
    expect(page.locator("#prompt-echo")).to_have_text("and darkness ")
    expect(page.locator("#usage")).to_have_text(re.compile(r"^\d+ in · 500 out$"))
    expect_latency_and_cost(page)
    expect(page.locator("#latency")).to_contain_text("first token")
    expect(page.locator("#error")).to_be_hidden()
    page.screenshot(path=tmp_path / "text.png", full_page=True)


def test_stop_aborts_the_stream(page, server, tmp_path, monkeypatch):
    batch = SERVERS[server].state.server.served["lm"].worker.batch
    step = batch.step
    monkeypatch.setattr(batch, "step", lambda: time.sleep(0.01) or step())  # 2,048 tokens outlast the click
    choose(page, "lm")
    page.fill("#max-tokens", "2048")
    page.fill("#text-seed", "1")
    page.click("#generate")
    page.wait_for_function("document.getElementById('completion').textContent.length > 0")
    page.click("#stop")
    expect(page.locator("#output")).to_have_attribute("data-state", "stopped")
    assert len(page.locator("#completion").text_content()) < 2048
    expect(page.locator("#generate")).to_be_enabled()
    expect(page.locator("#stop")).to_be_disabled()
    expect(page.locator("#error")).to_be_hidden()
    page.screenshot(path=tmp_path / "stopped.png", full_page=True)


def test_audio_clips_play_and_text_is_one_clip(page, cards, tmp_path):
    choose(page, "audio")
    assert page.locator("#audio-label option").all_inner_texts() == ["every class", *cards["audio"]["labels"]]
    page.select_option("#audio-label", "three")
    page.fill("#audio-n", "2")
    page.click("#generate")
    clips = page.locator("#clips audio")
    expect(clips).to_have_count(2)
    assert page.locator("#clips figcaption").all_inner_texts() == ["three · 1.00 s"] * 2
    page.wait_for_function("[...document.querySelectorAll('#clips audio')].every(a => a.duration > 0.9)")
    expect_latency_and_cost(page)
    page.fill("#audio-text", "4 0")
    page.click("#generate")
    expect(page.locator("#clips figcaption")).to_have_count(1)
    expect(page.locator("#clips figcaption")).to_contain_text("four zero")
    page.screenshot(path=tmp_path / "audio.png", full_page=True)


def test_images_render_in_a_grid(page, cards, tmp_path):
    choose(page, "gan")
    labels = cards["gan"]["labels"]
    options = page.locator("#label option").all_inner_texts()
    assert options == ["every class", *labels]
    expect(page.locator("#n")).to_have_value("16")
    page.select_option("#label", labels[3])
    page.fill("#seed", "0")
    page.click("#generate")
    images = page.locator("#images img")
    expect(images).to_have_count(16)
    page.wait_for_function("[...document.querySelectorAll('#images img')].every(i => i.complete)")
    sizes = images.evaluate_all("images => images.map(i => [i.naturalWidth, i.naturalHeight, i.width])")
    assert sizes == [[28, 28, 84]] * 16  # 28x28 pictures drawn 3x
    assert page.locator("#images figcaption").all_inner_texts() == [labels[3]] * 16
    expect(page.locator("#images img").first).to_have_css("image-rendering", "pixelated")
    expect_latency_and_cost(page)
    page.screenshot(path=tmp_path / "images.png", full_page=True)

    page.select_option("#label", "")  # every class in turn
    page.fill("#n", "10")
    page.click("#generate")
    expect(page.locator("#images figcaption")).to_have_text(labels[:10])


def test_classifier_shows_one_bar_per_label(page, cards, tmp_path):
    choose(page, "finetune")
    expect(page.locator("#classify")).to_be_visible()
    expect(page.locator("#generate")).to_be_hidden()
    page.fill("#classify-text", "and darkness under heaven")
    page.click("#classify")
    labels = cards["finetune"]["labels"]
    bars = page.locator("#bars .bar")
    expect(bars).to_have_count(len(labels))
    assert page.locator("#bars .bar-label").all_inner_texts() == labels
    percents = [float(t.rstrip("%")) for t in page.locator("#bars .bar-value").all_inner_texts()]
    assert abs(sum(percents) - 100) < 0.5, percents
    expect(page.locator("#bars .bar.predicted")).to_have_count(1)
    widths = page.locator("#bars .bar-fill").evaluate_all("fills => fills.map(f => f.getBoundingClientRect().width)")
    assert widths.index(max(widths)) == percents.index(max(percents))  # the longest bar is the likeliest label
    expect_latency_and_cost(page)
    page.screenshot(path=tmp_path / "bars.png", full_page=True)


def test_bad_request_shows_the_servers_error(page, tmp_path):
    choose(page, "lm")
    page.fill("#max-tokens", "99999")
    page.click("#generate")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("max_tokens: Input should be less than or equal to 2048")
    expect(page.locator("#result")).to_be_hidden()
    expect(page.locator("#generate")).to_be_enabled()
    page.screenshot(path=tmp_path / "error.png", full_page=True)

    page.fill("#max-tokens", "5")  # a good request clears the error
    page.fill("#text-seed", "0")
    page.click("#generate")
    expect(page.locator("#output")).to_have_attribute("data-state", "done")
    expect(error).to_be_hidden()
