"""The playground's chat panel in headless Chromium against a real server: the conversation is kept and sent
whole with every turn, answers stream into bubbles, New chat forgets, a refused turn leaves the conversation."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (Debian's chromium package) to drive the playground", allow_module_level=True
    )

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from genlab.serve import create_app, open_runs  # noqa: E402
from tests.serving import running_server  # noqa: E402
from tests.test_chat_serve import trained_chat  # noqa: E402
from tests.test_playground import CHROMIUM_ARGS, LATENCY  # noqa: E402


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    run = trained_chat(tmp_path_factory)
    with running_server(create_app(open_runs([run]))) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1040, "height": 900})
        page.set_default_timeout(15_000)
        errors = []
        page.on("pageerror", lambda error: errors.append(error))
        page.goto(url)
        yield page
        browser.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def send(page, text: str) -> None:
    page.fill("#chat-message", text)
    page.click("#generate")


def test_the_chat_panel_keeps_the_conversation(page, tmp_path):
    expect(page.locator("#chat-panel")).to_be_visible()
    expect(page.locator("#text-panel")).to_be_hidden()
    expect(page.locator("#generate")).to_have_text("Send")
    expect(page.locator("#model-info")).to_contain_text("POST /v1/chat/completions")
    send(page, "Translate into Spanish: sun moon")
    assistant = page.locator(".msg.assistant")
    expect(assistant.nth(0)).to_have_attribute("data-state", "done")
    expect(assistant.nth(0)).to_have_text("sol luna")
    expect(page.locator("#latency")).to_have_text(LATENCY)
    expect(page.locator("#chat-message")).to_have_value("")
    send(page, "Do you like the sun?")
    expect(assistant.nth(1)).to_have_attribute("data-state", "done")
    assert page.evaluate("conversation.map(m => m.role).join()") == "user,assistant,user,assistant"
    assert page.evaluate("conversation[0].content") == "Translate into Spanish: sun moon"
    page.screenshot(path=tmp_path / "chat.png", full_page=True)

    send(page, "sun " * 300)  # longer than the context: the server's 422, and the conversation as it was
    expect(page.locator("#error")).to_contain_text("messages: the conversation is")
    expect(page.locator(".msg")).to_have_count(4)

    page.click("#chat-reset")
    expect(page.locator(".msg")).to_have_count(0)
    assert page.evaluate("conversation.length") == 0
