"""A load test of `genlab serve` with locust: the OpenAI-compatible endpoints under a realistic mix.

Each simulated user picks, with these weights: a completion (4, not streamed) or a streamed one (4) — a prompt
of 3 to 62 characters, max_tokens drawn from 16..512 (log-uniform: many short answers, a few long ones),
temperature 0.8, its own seed —, an image request (1: n 1-8, a random label) or an audio request (1: n 1-2, a
random label), then waits 0.1-1 s. The served models are read from /v1/models (the first of each endpoint);
an endpoint with no model is skipped.

What it reports beside locust's own tables (one row per endpoint; 429s under their own name, `... [429]`,
counted as answers, since they are the server saying "later" as it must under overload — a user that gets
one waits its Retry-After):
- `TTFT` and `STREAM` rows: time to the first streamed text, and to the end of the stream;
- `GENLAB_LOAD_SUMMARY=PATH`: a JSON summary at the end: per endpoint p50/p95 latency, TTFT p50/p95,
  completion tokens/s, requests, errors (failures other than 429) and 429s.

    genlab serve runs/gpt runs/cond runs/digits --workers 2 --max-queue 16 &
    locust -f benchmarks/serve_locustfile.py --headless -u 32 -r 8 -t 2m --host http://127.0.0.1:8000
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from functools import partial

from locust import HttpUser, between, events, task

PROMPTS = [
    "And",
    "In the beginning",
    "And God said",
    "Blessed are the meek: for they",
    "And the LORD spake unto Moses, saying,",
    "For God so loved the world, that he gave his only begotten Son",
]
TOKENS = {"completion_tokens": 0}
ENDPOINTS = {"completions": "/v1/completions", "images": "/v1/images/generations", "audio": "/v1/audio/generations"}


def max_tokens() -> int:
    """16..512, log-uniform."""
    return int(math.exp(random.uniform(math.log(16), math.log(512))))


def count_tokens(answer) -> None:
    TOKENS["completion_tokens"] += answer.json()["usage"]["completion_tokens"]


def read_stream(started: float, answer) -> str | None:
    """Read a streamed completion to its end: its time to first text (a `TTFT` row) and whole time (a `STREAM`
    row; locust's own row for a streamed request stops at the headers), its usage; a problem, or None."""
    first, done = None, False
    for line in answer.iter_lines():
        if first is None and line.startswith(b"data: {") and b'"text": "' in line and b'"text": ""' not in line:
            first = time.perf_counter()
            fire("TTFT", (first - started) * 1000)
        if line.startswith(b"data: {") and b'"usage"' in line and b'"choices": []' in line:
            TOKENS["completion_tokens"] += json.loads(line[6:])["usage"]["completion_tokens"]
        done = done or line == b"data: [DONE]"
    fire("STREAM", (time.perf_counter() - started) * 1000)
    return None if done else "the stream ended without data: [DONE]"


def fire(kind: str, milliseconds: float) -> None:
    events.request.fire(
        request_type=kind,
        name="/v1/completions stream",
        response_time=milliseconds,
        response_length=0,
        exception=None,
        context={},
    )


class Client(HttpUser):
    wait_time = between(0.1, 1.0)

    def on_start(self) -> None:
        listed = self.client.get("/v1/models", name="/v1/models").json()["data"]
        self.models: dict[str, str] = {}
        self.labels: dict[str, int] = {}  # classes of a conditional image or audio model
        for card in listed:
            for kind, path in ENDPOINTS.items():
                if card["endpoint"] == path and kind not in self.models:
                    self.models[kind], self.labels[kind] = card["id"], len(card.get("labels") or [])
                if card["endpoint"] == path and kind == "completions":  # prompts that fit (a token is ≥ 1 character)
                    self.prompts = [p for p in PROMPTS if len(p) <= card["context"]] or PROMPTS[:1]

    def post(self, kind: str, body: dict, read=None, name: str = "", **kwargs) -> None:
        """POST to an endpoint and `read(answer)` the answer (-> a problem, or None); 429 is counted under its
        own name and waited out, as Retry-After asks."""
        name = name or ENDPOINTS[kind]
        with self.client.post(ENDPOINTS[kind], json=body, catch_response=True, name=name, **kwargs) as answer:
            if answer.status_code == 429:
                answer.request_meta["name"] = f"{name} [429]"
                answer.success()
                time.sleep(float(answer.headers.get("Retry-After", 1)))
                return
            problem = f"HTTP {answer.status_code}: {answer.text[:200]}" if answer.status_code != 200 else None
            if problem is None and read is not None:
                problem = read(answer)
            if problem:
                answer.failure(problem)

    def completion_body(self) -> dict:
        return {
            "model": self.models["completions"],
            "prompt": random.choice(self.prompts),
            "max_tokens": max_tokens(),
            "temperature": 0.8,
            "seed": random.randrange(2**31),
        }

    @task(4)
    def completion(self) -> None:
        if "completions" in self.models:
            self.post("completions", self.completion_body(), read=count_tokens)

    @task(4)
    def streamed_completion(self) -> None:
        if "completions" not in self.models:
            return
        body = self.completion_body() | {"stream": True, "stream_options": {"include_usage": True}}
        read = partial(read_stream, time.perf_counter())
        self.post("completions", body, read=read, name="/v1/completions stream", stream=True)

    def drawn(self, kind: str, most: int) -> None:
        """An image or audio request: 1..most items, of a random class where the model has classes."""
        body = {"model": self.models[kind], "n": random.randint(1, most), "seed": random.randrange(2**31)}
        if self.labels[kind]:
            body["label"] = random.randrange(self.labels[kind])
        self.post(kind, body)

    @task(1)
    def image(self) -> None:
        if "images" in self.models:
            self.drawn("images", 8)

    @task(1)
    def audio(self) -> None:
        if "audio" in self.models:
            self.drawn("audio", 2)


@events.quitting.add_listener
def write_summary(environment, **_) -> None:
    path = os.environ.get("GENLAB_LOAD_SUMMARY")
    if not path:
        return
    stats = environment.stats
    seconds = max(stats.last_request_timestamp - stats.start_time, 1e-9) if stats.last_request_timestamp else None
    rows = {}
    for (name, method), entry in sorted(stats.entries.items()):
        rows[f"{method} {name}"] = {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "max_ms": entry.max_response_time,
        }
    summary = {
        "seconds": seconds,
        "rows": rows,
        "completion_tokens": TOKENS["completion_tokens"],
        "completion_tokens_per_second": TOKENS["completion_tokens"] / seconds if seconds else None,
        "errors": stats.total.num_failures,
        "rate_limited_429": sum(r["requests"] for k, r in rows.items() if k.endswith("[429]")),
        "failures": [
            {"name": f.name, "error": str(f.error)[:300], "occurrences": f.occurrences} for f in stats.errors.values()
        ],
    }
    with open(path, "w") as fh:
        json.dump(summary, fh, indent=2)
