"""The outermost layer of the app: bounds request bodies and counts every request for /metrics.

A body is read whole (at most max_body_bytes, whatever Content-Length says) before the app sees it,
so a too-large request is answered 413 without reaching a model, and the app never reads a body
of unbounded size.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from genlab.serve.metrics import Metrics

# /metrics labels: fixed paths as they are, anything else by its route (bounded label values)
ROUTES = (
    "/",
    "/health",
    "/metrics",
    "/docs",
    "/openapi.json",
    "/v1/models",
    "/v1/completions",
    "/v1/images/generations",
    "/v1/classifications",
    "/v1/audio/generations",
)


def route_label(path: str) -> str:
    if path in ROUTES:
        return path
    if path.startswith("/v1/models/"):
        return "/v1/models/{model}"
    if path.startswith("/static/"):
        return "/static"
    return "other"


class Guard:
    def __init__(self, app: Any, metrics: Metrics, max_body_bytes: int):
        self.app, self.metrics, self.max_body_bytes = app, metrics, max_body_bytes
        self.worker = (b"x-genlab-worker", str(os.getpid()).encode())  # the process answering (--workers N)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, worker = time.perf_counter(), 0, self.worker
        endpoint = route_label(scope["path"])

        async def counted_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # which of --workers N answered: a client can tell where a connection landed
                message = {**message, "headers": [*message.get("headers", []), worker]}
            await send(message)

        try:
            body = await self._read_body(receive)
            if body is None:
                await self._too_large(counted_send)
                return
            replayed = False

            async def replay() -> dict:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()  # after the body: wait for the disconnect, as the app expects

            await self.app(scope, replay, counted_send)
        finally:
            self.metrics.requests.labels(endpoint, str(status or 499)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)

    async def _read_body(self, receive: Any) -> bytes | None:
        """The whole body, or None once it is larger than allowed."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, send: Any) -> None:
        body = json.dumps(
            {
                "error": {
                    "message": f"the request body is larger than {self.max_body_bytes} bytes",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "413",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
