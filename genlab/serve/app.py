"""`genlab serve`'s app: the OpenAI-compatible API (openai.py), genlab's own routes (native.py) and the
playground (playground.py) over one `Server` (server.py), behind the `Guard` that bounds bodies and counts
requests. Every error is a JSON body `{"error": {"message", "type", "param", "code"}}` (errors.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from genlab.serve import chat, music, native, openai, playground
from genlab.serve import schemas as s
from genlab.serve.errors import HANDLERS
from genlab.serve.guard import Guard
from genlab.serve.server import Server
from genlab.tasks.contract import RunHandle


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The models' workers run while the app does."""
    server: Server = app.state.server
    server.start()
    yield
    server.close()


def create_app(handles: dict[str, RunHandle], limits: s.Limits = s.Limits(), api_key: str | None = None) -> FastAPI:
    """The server for `handles` (model name -> opened run). Workers start with the app's lifespan."""
    server = Server(handles, limits, api_key)
    app = FastAPI(
        title="genlab",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="OpenAI-compatible endpoints for genlab runs, a playground at /, metrics at /metrics.",
        exception_handlers=HANDLERS,
    )
    app.state.server = server
    app.add_middleware(Guard, metrics=server.metrics, max_body_bytes=limits.max_body_bytes)
    playground.mount_files(app)
    for router in (playground.router, native.router, openai.router, chat.router, music.router):
        app.include_router(router)
    return app
