"""The health probe that tells a hung worker from a busy one (genlab.serve.liveness), without processes: the
probe's deadline, and the worker's answer in front of its app."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from types import SimpleNamespace

from genlab.serve.liveness import Liveness, probe, socket_path
from genlab.serve.metrics import MULTIPROCESS, shared_metrics


def test_a_probe_gives_up_at_its_deadline(tmp_path):
    assert not probe(socket_path(tmp_path, 1), 1.0)  # nobody listens there: False at once
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:  # accepts, never answers (a stopped worker)
        silent.bind(str(socket_path(tmp_path, 2)))
        silent.listen(1)
        started = time.monotonic()
        assert not probe(socket_path(tmp_path, 2), 0.3)
        assert 0.25 < time.monotonic() - started < 2


def app_with_models(alive: bool) -> SimpleNamespace:
    """What Liveness reads of the app: each model's worker thread; and what it passes other requests to."""
    model = SimpleNamespace(worker=SimpleNamespace(thread=SimpleNamespace(is_alive=lambda: alive)))

    async def app(scope, receive, send):
        app.seen.append(scope["type"])
        if scope["type"] == "lifespan":
            await send({"type": "lifespan.startup.complete"})

    app.seen = []
    app.state = SimpleNamespace(server=SimpleNamespace(served={"lm": model}))
    return app


def call(liveness: Liveness, scope: dict) -> list[dict]:
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    asyncio.run(liveness(scope, receive, send))
    return sent


def test_the_probe_is_answered_in_front_of_the_app_and_names_a_dead_model():
    started = []
    unix = {"type": "http", "path": "/alive", "server": ("/tmp/1.sock", None)}
    for alive, status in ((True, 200), (False, 503)):
        app = app_with_models(alive)
        liveness = Liveness(app, lambda: started.append(True), "/tmp/1.sock")
        assert call(liveness, unix)[0]["status"] == status and app.seen == []  # the app never saw the probe
        call(liveness, {"type": "http", "path": "/health", "server": ("127.0.0.1", 8000)})
        assert app.seen == ["http"]  # a client's request (over TCP) goes to the app
        call(liveness, {**unix, "server": ("/tmp/1.http", None)})  # ... and one the front hands over its socket
        assert app.seen == ["http", "http"]
    dead = Liveness(app_with_models(False), lambda: None, "/tmp/1.sock")
    assert b'"dead_models": ["lm"]' in call(dead, unix)[1]["body"]
    call(liveness, {"type": "lifespan"})
    assert started == [True]  # the supervisor's deadline starts once the app's models run


def test_shared_metrics_points_prometheus_at_a_new_folder_for_the_block_only(tmp_path):
    before = os.environ.get(MULTIPROCESS)
    with shared_metrics(tmp_path / "metrics"):
        assert os.environ[MULTIPROCESS] == str(tmp_path / "metrics") and (tmp_path / "metrics").is_dir()
    assert os.environ.get(MULTIPROCESS) == before
