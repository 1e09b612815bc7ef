"""POST /v1/chat/completions: the real openai client (streaming and not), n, stop, and bad input -> 4xx JSON."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

import genlab
from genlab import api
from genlab.serve import create_app
from genlab.tasks import TASKS
from genlab.tasks.chat.process import answer_all, prompt_ids
from genlab.tasks.chat.recipe import ChatDecodingConfig
from tests.serving import running_server

ASK = [{"role": "user", "content": "Translate into Spanish: sun moon"}]


def trained_chat(tmp_path_factory) -> Path:
    """The tiny chat run trained long enough to answer its two kinds and end its turns (once per session)."""
    folder = tmp_path_factory.getbasetemp() / "chat-trained"
    if (folder / "run" / "checkpoints" / "last" / "meta.json").is_file():
        return folder / "run"
    tiny = TASKS["chat"].tiny(folder)
    more = ["model.n_layer=2", "model.n_embd=32", "train.epochs=25", "train.lr=1e-2", "train.warmup_iters=5"]
    more += ["data.system=0", "data.multi_turn=0", "train.sample_every=25", "train.checkpoint_every=25"]
    return api.fit(tiny.recipe, folder / "run", tiny.overrides + more)[0]


@pytest.fixture(scope="module")
def handle(tmp_path_factory):
    return genlab.load(trained_chat(tmp_path_factory))


@pytest.fixture(scope="module")
def client(handle):
    with TestClient(create_app({"chat": handle})) as c:
        yield c


def test_the_openai_client_chats_streaming_and_not(handle):
    expected = handle.generate(prompt=ASK[0]["content"], temperature=0.0)
    assert expected == "sol luna"  # learnt, and ended by the end-of-turn marker (not cut at max_tokens)
    with running_server(create_app({"chat": handle})) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        answer = client.chat.completions.create(model="chat", messages=ASK, temperature=0, max_tokens=20, n=2)
        assert [c.message.content for c in answer.choices] == [expected, expected]
        assert {c.finish_reason for c in answer.choices} == {"stop"} and answer.choices[0].message.role == "assistant"
        assert answer.object == "chat.completion" and answer.usage.prompt_tokens > 0
        chunks = list(
            client.chat.completions.create(
                model="chat",
                messages=[{"role": "system", "content": "Be brief."}, *ASK],
                temperature=0,
                max_tokens=20,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].object == "chat.completion.chunk"
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == handle.generate(prompt=ASK[0]["content"], system="Be brief.", temperature=0.0)
        assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-1].usage.completion_tokens > 0
        cut = client.chat.completions.create(model="chat", messages=ASK, temperature=0, stop=" ")
        assert cut.choices[0].message.content == "sol"  # the caller's stop string ends it too


def test_the_conversation_is_the_context(client, handle):
    """A multi-turn request answers the last user message, after the earlier turns."""
    messages = [*ASK, {"role": "assistant", "content": "sol luna"}, {"role": "user", "content": "Do you like the sun?"}]
    body = client.post("/v1/chat/completions", json={"model": "chat", "messages": messages, "temperature": 0}).json()
    assert body["choices"][0]["message"]["content"] == "".join(handle.reply(messages))
    assert body["usage"]["prompt_tokens"] > len(handle.tokenizer.encode("Do you like the sun?"))


def test_content_as_a_list_of_text_parts_reads_as_the_joined_text(client):
    """OpenAI's clients may send content as parts: text parts read as their text joined by newlines."""
    parts = [{"type": "text", "text": "Translate into Spanish:"}, {"type": "text", "text": "sun moon"}]
    joined = {"role": "user", "content": "Translate into Spanish:\nsun moon"}

    def answer(message):
        body = {"model": "chat", "messages": [message], "temperature": 0, "max_tokens": 8}
        return client.post("/v1/chat/completions", json=body).json()

    as_parts, as_text = answer({"role": "user", "content": parts}), answer(joined)
    assert as_parts["choices"][0]["message"] == as_text["choices"][0]["message"]
    assert as_parts["usage"]["prompt_tokens"] == as_text["usage"]["prompt_tokens"]


@pytest.mark.parametrize(
    "body, status, says",
    [
        ({"model": "chat"}, 422, "messages"),
        ({"model": "chat", "messages": []}, 422, "messages"),
        ({"model": "chat", "messages": [{"role": "robot", "content": "hi"}]}, 422, "role"),
        ({"model": "chat", "messages": [{"role": "user", "content": 7}]}, 422, "content"),
        ({"model": "chat", "messages": [{"role": "user", "content": ["a"]}]}, 422, "content"),
        ({"model": "chat", "messages": [{"role": "user"}]}, 422, "content"),
        ({"model": "chat", "messages": [{"role": "user", "content": []}]}, 422, "content"),
        (
            {"model": "chat", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            422,
            "'text'",
        ),
        ({"model": "chat", "messages": [{"role": "user", "content": "sun " * 300}]}, 422, "tokens"),
        ({"model": "chat", "messages": [{"role": "user", "content": "a<|end|>b"}]}, 422, "chat marker"),
        ({"model": "chat", "messages": ASK, "max_tokens": 0}, 422, "max_tokens"),
        ({"model": "chat", "messages": ASK, "n": 99}, 422, "n"),
        ({"model": "nope", "messages": ASK}, 404, "no model named"),
        ({"model": "chat", "messages": "hi"}, 422, "messages"),
    ],
)
def test_bad_chat_requests_are_4xx_json(client, body, status, says):
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert says in error["message"] + str(error.get("param")) and "Traceback" not in response.text


def test_the_runs_decoding_is_the_default_everywhere_and_a_request_overrides_it(handle, monkeypatch):
    """The recipe's `decoding` penalties apply wherever a caller leaves them out: handle, server, evaluation."""
    monkeypatch.setattr(handle.recipe.decoding, "frequency_penalty", -2.0)  # rewards repeats: easy to tell apart
    hello = {"prompt": "hello", "max_tokens": 12}
    looping = handle.generate(**hello)
    assert looping == handle.generate(**hello, frequency_penalty=-2.0)
    plain = handle.generate(**hello, frequency_penalty=0.0)
    assert looping != plain
    with TestClient(create_app({"chat": handle})) as c:
        for extra, expected in (({}, looping), ({"frequency_penalty": 0}, plain)):
            body = {"model": "chat", "messages": [{"role": "user", "content": "hello"}], "temperature": 0}
            answer = c.post("/v1/chat/completions", json=body | {"max_tokens": 12} | extra).json()
            assert answer["choices"][0]["message"]["content"] == expected
    ids = [prompt_ids(handle.tokenizer, [{"role": "user", "content": "hello"}], 256)]
    for decoding, expected in ((handle.recipe.decoding, looping), (ChatDecodingConfig(0.0), plain)):
        batched = answer_all(handle.model, ids, 12, handle.stops, 1, decoding)[0].tokens  # the evaluation's path
        assert handle.tokenizer.decode(batched).removesuffix("<|end|>") == expected
