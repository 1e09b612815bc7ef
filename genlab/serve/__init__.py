"""`genlab serve`: runs behind an OpenAI-compatible HTTP API with continuous batching, Prometheus
metrics and a browser playground (genlab.serve.app). `serve(runs)` is what the CLI calls."""

from __future__ import annotations

import socket
from pathlib import Path

from genlab import api
from genlab.errors import GenlabError
from genlab.io.validate import environ
from genlab.serve.app import create_app
from genlab.serve.schemas import Limits

__all__ = ["Limits", "create_app", "open_runs", "serve"]


def open_runs(runs: list[str | Path], checkpoint: str = "last") -> dict:
    """Each run opened once, named by its folder (the `model` of a request)."""
    handles = {}
    for run in runs:
        name = Path(run).resolve().name
        if name in handles:
            raise GenlabError(f"two runs are named {name!r}: a served model's name is its folder's name")
        handles[name] = api.load(run, checkpoint)
    if not handles:
        raise GenlabError("name at least one run to serve")
    return handles


def serve(
    runs: list[str | Path],
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    limits: Limits = Limits(),
    checkpoint: str = "last",
) -> None:
    """Load the runs and serve them until interrupted (Ctrl-C)."""
    import uvicorn  # the server itself: only this command needs it

    api_key = api_key or environ("GENLAB_API_KEY")
    with socket.socket() as probe:  # a taken port is one clear line, before minutes of loading
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise GenlabError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    app = create_app(open_runs(runs, checkpoint), limits, api_key)
    names = ", ".join(app.state.server.served)
    print(
        f"genlab: serving {names} at http://{host}:{port}/ (playground /, API /v1, docs /docs, "
        f"metrics /metrics){'' if api_key else '; no API key set'}",
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
