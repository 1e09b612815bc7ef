"""The playground's chat panel in headless Chromium against a real server: the conversation is kept and sent
whole with every turn, answers stream into bubbles, New chat forgets, a refused turn leaves the conversation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from genlab.serve import create_app, open_runs
from tests.serving import running_server
from tests.test_chat_serve import trained_chat
from tests.test_playground import LATENCY, playground_on


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    run = trained_chat(tmp_path_factory)
    with running_server(create_app(open_runs([run]))) as url, playground_on(url, height=900) as page:
        yield page


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
