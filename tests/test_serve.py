"""`genlab serve`: every endpoint for every kind of run, OpenAI compatibility, SSE framing, batching
equal to unbatched generation, disconnects, the queue bound, auth, limits and the CLI command."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from PIL import Image

from genlab import api
from genlab.cli import main
from genlab.io.validate import SEED_MAX
from genlab.serve import Limits, create_app, open_runs
from genlab.serve.server import ENDPOINTS
from tests.conftest import one_error_line
from tests.serving import running_server

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def handles(served_runs):
    return open_runs(list(served_runs.values()))


@pytest.fixture(scope="module")
def client(handles):
    with TestClient(create_app(handles, api_key=KEY), headers=AUTH) as c:
        yield c


@pytest.fixture(scope="module")
def server(handles):
    """A real uvicorn server (streaming, disconnects and the openai client need one)."""
    app = create_app(handles, api_key=KEY)
    with running_server(app) as url:
        yield url, app


def completion(client, **body):
    response = client.post("/v1/completions", json={"model": "lm", **body})
    assert response.status_code == 200, response.text
    return response.json()


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    return response.json()["error"]


def test_health_needs_no_key_and_v1_needs_the_right_one(client):
    health = client.get("/health", headers={"Authorization": ""}).json()
    assert health == {
        "status": "ok",
        "models": ["lm", "finetune", "audio", "translation", "gan", "seq2seq"],
        "worker": os.getpid(),  # the process that answered (one of --workers N) and its memory
        "rss_mb": health["rss_mb"],
    }
    assert health["rss_mb"] > 50
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        error = error_of(client.get("/v1/models", headers=headers), 401)
        assert error["type"] == "authentication_error"
    assert client.get("/v1/models").status_code == 200


def test_models_list_every_run_with_its_task_endpoint_size_quality_and_cost(client, handles):
    cards = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert {name: card["endpoint"] for name, card in cards.items()} == {
        "lm": "/v1/completions",
        "seq2seq": "/v1/completions",
        "gan": "/v1/images/generations",
        "finetune": "/v1/classifications",
        "audio": "/v1/audio/generations",
        "translation": "/v1/translations",
    }
    assert cards["lm"]["parameters"] == sum(p.numel() for p in handles["lm"].model.parameters())
    assert cards["gan"]["labels"] == [str(d) for d in range(10)]
    assert cards["finetune"]["labels"] == ["a", "b", "c"]
    assert cards["lm"]["context"] == 32
    assert cards["lm"]["cost"]["steps"] == handles["lm"].report["cost"]["steps"]
    assert "validation" in cards["lm"]["quality"]
    assert client.get("/v1/models/gan").json() == cards["gan"]


@pytest.mark.parametrize(
    "settings",
    [
        dict(temperature=0),
        dict(temperature=1.0, seed=7),
        dict(temperature=0.8, top_k=5, top_p=0.9, seed=3),
        dict(temperature=0, presence_penalty=1.5, frequency_penalty=0.5),
        dict(temperature=0.9, frequency_penalty=-1.0, seed=5),
    ],
)
def test_a_completion_is_what_the_python_api_generates(client, handles, settings):
    body = completion(client, prompt="thou ", max_tokens=20, **settings)
    expected = handles["lm"].generate("thou ", max_tokens=20, **settings)
    assert body["choices"] == [{"text": expected, "index": 0, "logprobs": None, "finish_reason": "length"}]
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 20, "total_tokens": 25}
    assert body["object"] == "text_completion" and body["model"] == "lm"
    assert body["genlab"]["flops"] > 0 and body["genlab"]["seconds"] > 0


def test_n_choices_and_several_prompts_each_get_their_own_seed(client, handles):
    body = completion(client, prompt=["thou ", "the light "], n=2, max_tokens=8, seed=11)
    texts = [c["text"] for c in body["choices"]]
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    expected = [handles["lm"].generate(p, max_tokens=8, seed=11 + j) for p in ("thou ", "the light ") for j in (0, 1)]
    assert texts == expected
    assert body["usage"]["prompt_tokens"] == len("thou ") + len("the light ")


def test_a_stop_string_ends_the_text_before_it(client, handles):
    full = handles["lm"].generate("thou ", max_tokens=30, temperature=0)
    stop = full[5:7]
    body = completion(client, prompt="thou ", max_tokens=30, temperature=0, stop=[stop, "never-seen"])
    assert body["choices"][0]["text"] == full[: full.index(stop)]
    assert body["choices"][0]["finish_reason"] == "stop"


def test_seq2seq_completion_is_the_runs_greedy_answer(client, handles):
    body = client.post(
        "/v1/completions", json={"model": "seq2seq", "prompt": "thou hast light", "max_tokens": 24, "temperature": 0}
    ).json()
    assert body["choices"][0]["text"] == handles["seq2seq"].generate("thou hast light", max_tokens=24)


def test_images_are_the_pngs_of_the_runs_samples(client, handles):
    body = client.post("/v1/images/generations", json={"model": "gan", "n": 3, "label": "7", "seed": 5}).json()
    assert [d["label"] for d in body["data"]] == ["7", "7", "7"]
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(d["b64_json"])))) for d in body["data"]])
    expected = handles["gan"].generate(n=3, label=7, seed=5).images[:, 0].numpy() * 255
    assert pixels.shape == (3, 28, 28) and np.abs(pixels - expected).max() <= 1  # PNG rounds to uint8
    every_class = client.post("/v1/images/generations", json={"model": "gan", "n": 12}).json()
    assert [d["label"] for d in every_class["data"]] == [str(i % 10) for i in range(12)]
    assert body["genlab"]["flops"] * 4 == every_class["genlab"]["flops"]


def test_audio_clips_are_the_wavs_of_the_runs_clips(client, handles):
    body = client.post("/v1/audio/generations", json={"model": "audio", "n": 2, "label": "three", "seed": 4}).json()
    assert [d["words"] for d in body["data"]] == ["three", "three"]
    waves = np.stack([sf.read(io.BytesIO(base64.b64decode(d["b64_json"])), dtype="float32")[0] for d in body["data"]])
    expected = handles["audio"].generate(n=2, label=3, seed=4).numpy()
    assert waves.shape == (2, 16_000) and np.abs(waves - expected).max() <= 1 / 32768 + 1e-6  # 16-bit PCM
    said = client.post("/v1/audio/generations", json={"model": "audio", "text": "4 0"}).json()["data"]
    assert [d["words"] for d in said] == ["four zero"] and said[0]["seconds"] > 1
    error = error_of(client.post("/v1/audio/generations", json={"model": "audio", "label": 3, "text": "4"}), 422)
    assert error["param"] == "text"
    error = error_of(client.post("/v1/audio/generations", json={"model": "audio", "text": "4 eleven"}), 422)
    assert "eleven" in error["message"]


@pytest.mark.parametrize(
    "label, message", [(10, "must be in 0..9"), ("seven", "not one of"), (-1, "0..9"), ("\u00b2", "not one of")]
)  # "²".isdigit(), found by the fuzzer
def test_a_label_the_model_does_not_have_is_a_422_naming_it(client, label, message):
    error = error_of(client.post("/v1/images/generations", json={"model": "gan", "label": label}), 422)
    assert message in error["message"] and error["param"] == "label"


def test_classifications_give_every_label_with_its_probability(client, handles):
    body = client.post("/v1/classifications", json={"model": "finetune", "input": ["thou art", "hast thou"]}).json()
    expected = handles["finetune"].classify(["thou art", "hast thou"])
    for answer, scores in zip(body["data"], expected):
        assert answer["label"] == scores.label
        assert [(s["label"], pytest.approx(s["probability"], abs=1e-6)) for s in answer["scores"]] == scores.scores
    assert body["usage"]["prompt_tokens"] == len("thou art") + len("hast thou")


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "lm", "prompt": "x", "max_tokens": 100_000}, "max_tokens"),
        ({"model": "lm", "prompt": "x", "n": 99}, "n"),
        ({"model": "lm", "prompt": "x" * 9000}, "prompt"),
        ({"model": "lm", "prompt": "x" * 40}, "prompt"),  # longer than the tiny model's 32-token context
        ({"model": "lm", "prompt": ""}, "prompt"),
        ({"model": "lm", "prompt": "x", "temperature": -1}, "temperature"),
        ({"model": "lm", "prompt": "x", "top_p": 0}, "top_p"),
        ({"model": "lm", "prompt": "x", "presence_penalty": 2.5}, "presence_penalty"),
        ({"model": "lm", "prompt": "x", "frequency_penalty": -3}, "frequency_penalty"),
        ({"model": "lm", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "lm"}, "prompt"),
        ({"model": "gan", "prompt": "x"}, "model"),  # an image model at the text endpoint
    ],
)
def test_a_request_beyond_a_limit_is_a_422_that_names_the_field(client, body, param):
    error = error_of(client.post("/v1/completions", json=body), 422)
    assert error["param"] == param or error["param"].startswith(param + "."), error
    assert param in error["message"]


def test_unknown_model_is_404_and_names_are_never_paths(client):
    for name in ("nope", "../lm", "/etc/passwd", "lm/../gan"):
        error = error_of(client.post("/v1/completions", json={"model": name, "prompt": "x"}), 404)
        assert error["param"] == "model"
    assert client.get("/static/../../../../etc/passwd").status_code == 404


def test_bad_json_and_large_bodies_are_clear_errors(client):
    error = error_of(
        client.post("/v1/completions", content=b"{not json", headers={"content-type": "application/json"}), 422
    )
    assert error["param"] == "body"
    error = error_of(client.post("/v1/completions", content=b"x" * (Limits.max_body_bytes + 1)), 413)
    assert "larger than" in error["message"]


def test_the_openai_client_works_streaming_and_not(server, handles):
    url, _ = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    expected = handles["lm"].generate("thou ", max_tokens=16, temperature=0)
    answer = client.completions.create(model="lm", prompt="thou ", max_tokens=16, temperature=0)
    assert answer.choices[0].text == expected and answer.usage.completion_tokens == 16
    chunks = list(
        client.completions.create(
            model="lm",
            prompt="thou ",
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == expected
    assert chunks[-1].usage.completion_tokens == 16 and chunks[-2].choices[0].finish_reason == "length"
    assert sorted(m.id for m in client.models.list()) == ["audio", "finetune", "gan", "lm", "seq2seq", "translation"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x")


def test_sse_framing(server):
    url, _ = server
    with httpx.stream(
        "POST",
        f"{url}/v1/completions",
        headers=AUTH,
        timeout=30,
        json={"model": "lm", "prompt": "thou ", "max_tokens": 6, "stream": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert all(c["object"] == "text_completion" and c["model"] == "lm" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_concurrent_requests_share_steps_and_get_the_unbatched_tokens(server, handles):
    url, app = server
    bodies = [
        dict(prompt=p, max_tokens=24, temperature=t, seed=s)
        for p, t, s in [
            ("thou ", 0, None),
            ("the light ", 1.0, 1),
            ("and ", 0.7, 2),
            ("heaven ", 0, None),
            ("was good ", 1.0, 5),
            ("you have ", 1.0, 6),
            ("darkness ", 0, None),
            ("of ", 1.0, 8),
        ]
    ]
    results: dict[int, str] = {}
    start = threading.Barrier(len(bodies))

    def ask(i: int) -> None:
        start.wait()
        response = httpx.post(f"{url}/v1/completions", headers=AUTH, timeout=60, json={"model": "lm", **bodies[i]})
        results[i] = response.json()["choices"][0]["text"]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, body in enumerate(bodies):
        assert results[i] == handles["lm"].generate(
            body["prompt"], max_tokens=24, temperature=body["temperature"], seed=body["seed"]
        )
    batches = app.state.server.metrics.batch_size.labels("lm").collect()[0].samples
    sum_of_sizes = next(s.value for s in batches if s.name.endswith("_sum"))
    steps = next(s.value for s in batches if s.name.endswith("_count"))
    assert sum_of_sizes / steps > 1.5  # several sequences per step on average: they were batched


def wait_until(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_client_that_disconnects_frees_its_slot(server):
    url, app = server
    worker = app.state.server.served["lm"].worker
    tokens = app.state.server.metrics.tokens.labels("lm")
    before = tokens._value.get()
    with httpx.stream(
        "POST",
        f"{url}/v1/completions",
        headers=AUTH,
        timeout=30,
        json={"model": "lm", "prompt": "thou ", "max_tokens": 2048, "stream": True},
    ) as response:
        lines = response.iter_lines()
        next(lines)  # the generation has started
        assert worker.active
        time.sleep(0.1)  # mid-stream: the server is sending chunks when the client goes
    assert wait_until(lambda: not worker.active), "the sequence stayed in the batch"
    assert tokens._value.get() - before < 2048  # stopped long before its max_tokens
    # the non-streaming path too: a client that gives up mid-request
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{url}/v1/completions",
            headers=AUTH,
            timeout=0.3,
            json={"model": "lm", "prompt": "thou ", "max_tokens": 2048},
        )
    assert wait_until(lambda: not worker.active), "the sequence stayed in the batch"


def test_a_full_queue_answers_429_with_retry_after(handles, monkeypatch):
    app = create_app({"lm": handles["lm"]}, Limits(max_batch=1, max_queue=1))
    long = {"model": "lm", "prompt": "thou ", "max_tokens": 2048, "stream": True}
    with (
        running_server(app) as url,
        httpx.Client(base_url=url, timeout=30) as first,
        httpx.Client(base_url=url, timeout=30) as second,
    ):
        worker = app.state.server.served["lm"].worker
        step = worker.batch.step
        monkeypatch.setattr(worker.batch, "step", lambda: time.sleep(0.02) or step())  # the slot stays taken
        with first.stream("POST", "/v1/completions", json=long) as running:
            lines = running.iter_lines()
            next(lines)  # holds the one slot (while `lines` is alive: dropping it would close the stream)
            short = {"model": "lm", "prompt": "x"}
            waiting = threading.Thread(target=lambda: second.post("/v1/completions", json=short))
            waiting.start()
            assert wait_until(lambda: len(worker.waiting) == 1)
            response = httpx.post(f"{url}/v1/completions", json={"model": "lm", "prompt": "x"})
            assert response.status_code == 429 and response.headers["retry-after"] == "1"
            assert response.json()["error"]["type"] == "rate_limit_error"
            assert 'genlab_queue_depth{model="lm"} 1.0' in httpx.get(f"{url}/metrics").text
        waiting.join(timeout=30)  # served once the first stream has gone


def test_metrics_count_requests_tokens_images_and_latency(client):
    completion(client, prompt="thou ", max_tokens=4)
    client.post("/v1/images/generations", json={"model": "gan", "n": 2})
    client.get("/v1/models", headers={"Authorization": "Bearer wrong"})
    text = client.get("/metrics").text
    for line in (
        'genlab_requests_total{endpoint="/v1/completions",status="200"}',
        'genlab_requests_total{endpoint="/v1/models",status="401"}',
        'genlab_tokens_generated_total{model="lm"}',
        'genlab_images_generated_total{model="gan"}',
        'genlab_request_seconds_bucket{endpoint="/v1/completions",le="0.5"}',
        'genlab_time_to_first_token_seconds_count{model="lm"}',
        'genlab_batch_size_count{model="gan"}',
    ):
        assert line in text, line


def test_playground_docs_and_schema_are_served_offline(client):
    assert client.get("/").headers["content-type"].startswith("text/html")
    docs = client.get("/docs").text
    assert "/swagger/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert client.get("/swagger/swagger-ui-bundle.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/completions", "/v1/images/generations", "/v1/classifications", "/v1/models"} <= set(paths)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_genlab_serve_command_end_to_end(served_runs, tmp_path):
    port = free_port()
    env = dict(os.environ, GENLAB_API_KEY=KEY)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "genlab",
            "serve",
            str(served_runs["lm"]),
            str(served_runs["gan"]),
            "--port",
            str(port),
            "--max-batch",
            "4",
            "--workers",
            "1",  # several workers: tests/test_serve_workers.py
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _up(url), 120), process.stderr.read() if process.poll() is not None else "no answer"
        body = httpx.post(f"{url}/v1/completions", headers=AUTH, json={"model": "lm", "prompt": "thou "}).json()
        assert len(body["choices"][0]["text"]) > 0
        assert httpx.post(f"{url}/v1/completions", json={"model": "lm", "prompt": "x"}).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in err, err
    assert f"at http://127.0.0.1:{port}/" in out


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_bad_input_is_one_line(served_runs, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing")]) == 2
    one_error_line(capsys)
    assert main(["serve", str(served_runs["lm"]), str(served_runs["lm"])]) == 2
    one_error_line(capsys, "two runs are named 'lm'")
    assert main(["serve", str(served_runs["lm"]), "--port", "70000"]) == 2
    one_error_line(capsys, "--port")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", str(served_runs["lm"]), "--port", str(taken.getsockname()[1])]) == 2
    one_error_line(capsys, "cannot listen")


def test_the_tiny_runs_cover_every_endpoint(served_runs):
    """Every endpoint the server has is exercised above by one of the tiny runs."""
    endpoints = {api.load(path).endpoint for path in served_runs.values()}
    assert endpoints == set(ENDPOINTS)
    assert Path(served_runs["lm"]).name == "lm"


def test_a_seed_means_what_it_means_on_the_command_line(client):
    """The server takes the CLI's seed range (genlab.io.validate.SEED_MAX), on every endpoint that takes a seed."""
    for path, body in (
        ("/v1/completions", {"model": "lm", "prompt": "x", "max_tokens": 1}),
        ("/v1/images/generations", {"model": "gan", "n": 1}),
        ("/v1/audio/generations", {"model": "audio", "n": 1}),
    ):
        for seed in (-1, SEED_MAX + 1):
            error = error_of(client.post(path, json={**body, "seed": seed}), 422)
            assert "seed" in error["message"]
        assert client.post(path, json={**body, "seed": SEED_MAX}).status_code == 200
