"""How the supervisor of `genlab serve --workers N` tells a worker that still runs but no longer answers (a
deadlock, an event loop blocked by a bug, a process stopped by SIGSTOP or the debugger) from one that is busy.

Each worker listens on two Unix sockets of its own: one for the requests the front hands it
(genlab.serve.front), one for the supervisor's health probe (`probe`), sent twice a second, each with a
deadline of its own; the worker's event loop answers it (`Liveness`, in front of the app) without queueing
behind a model. A worker whose last answer is older than `--worker-timeout` seconds is killed and replaced.
The probe has a socket of its own so that no client's request can be taken for one (or reach it).

The answer is 200 when the event loop runs and every model's worker thread is alive, 503 when a model's thread
has died (the worker would take requests it can never answer). A model step that never returns (its thread
alive but stuck) is not seen here: the event loop still answers.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

PROBE = b"GET /alive HTTP/1.1\r\nHost: worker\r\nConnection: close\r\n\r\n"


def socket_path(folder: str | Path, pid: int) -> Path:
    """Where worker `pid` listens for probes (named by pid: the supervisor knows it once the worker started)."""
    return Path(folder) / f"{pid}.sock"


def requests_path(folder: str | Path, pid: int) -> Path:
    """Where worker `pid` listens for the requests the front hands it."""
    return Path(folder) / f"{pid}.http"


def unix_socket(path: Path) -> socket.socket:
    """A Unix socket listening at `path`, before the worker's app starts (an early connection waits, it is
    not refused)."""
    path.unlink(missing_ok=True)  # a pid reused from a worker that was killed
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(2048)
    return sock


def probe(path: Path, deadline: float) -> bool:
    """Whether the worker behind `path` answered 200 within `deadline` seconds."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(deadline)
            sock.connect(str(path))
            sock.sendall(PROBE)
            head = b""
            while len(head) < 12 and (chunk := sock.recv(64)):  # "HTTP/1.1 200", however the bytes arrive
                head += chunk
            return head.startswith(b"HTTP/1.1 200")
    except OSError:  # refused, gone, or the deadline passed
        return False


Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class Liveness:
    """The worker's app with the probe's answer in front: a request that came over the probe's socket at
    `probe_path` (uvicorn gives it the server address (path, None)) is answered here, so it is not counted in
    /metrics and waits for no model. `on_started` runs once the app's lifespan has started (its models' threads
    run): the supervisor counts the worker's deadline from then."""

    def __init__(self, app: Any, on_started: Callable[[], None], probe_path: str):
        self.app, self.on_started, self.probe = app, on_started, (probe_path, None)

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._told_when_started(send))
        elif scope["type"] == "http" and tuple(scope.get("server") or ()) == self.probe:
            await self._answer(send)
        else:
            await self.app(scope, receive, send)

    def _told_when_started(self, send: Send) -> Send:
        async def told(message: dict) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                self.on_started()

        return told

    async def _answer(self, send: Send) -> None:
        dead = [name for name, model in self.app.state.server.served.items() if not model.worker.thread.is_alive()]
        body = json.dumps({"pid": os.getpid(), "dead_models": dead}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 503 if dead else 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
