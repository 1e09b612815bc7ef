"""`genlab serve`: runs behind an OpenAI-compatible HTTP API with continuous batching, Prometheus
metrics and a browser playground (genlab.serve.app), in one process or several (genlab.serve.processes).
`serve(runs)` is what the CLI calls."""

from __future__ import annotations

import gc
import socket
from pathlib import Path

from genlab.errors import GenlabError
from genlab.io.validate import environ
from genlab.serve.app import create_app
from genlab.serve.metrics import rss_mb
from genlab.serve.processes import default_workers, open_runs, serve_workers, worker_spec
from genlab.serve.schemas import Limits

__all__ = ["Limits", "create_app", "default_workers", "open_runs", "serve"]


def serve(
    runs: list[str | Path],
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    limits: Limits = Limits(),
    checkpoint: str = "last",
    workers: int = 1,
    worker_timeout: float = 30.0,
) -> None:
    """Load the runs and serve them until interrupted (Ctrl-C), in `workers` processes; with several, one that
    has not answered its health probe for `worker_timeout` seconds is replaced."""
    import uvicorn  # the server itself: only this command needs it

    if workers < 1:
        raise GenlabError(f"--workers must be at least 1, got {workers}")
    if not worker_timeout > 0:
        raise GenlabError(f"--worker-timeout must be more than 0 seconds, got {worker_timeout}")
    api_key = api_key or environ("GENLAB_API_KEY")
    with socket.socket() as probe:  # a taken port is one clear line, before minutes of loading
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise GenlabError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    app = create_app(open_runs(runs, checkpoint), limits, api_key)  # bad runs: one clear line, here
    names = ", ".join(app.state.server.served)
    how = f"{workers} worker processes" if workers > 1 else f"one process, RSS {rss_mb():.0f} MB"
    print(
        f"genlab: serving {names} at http://{host}:{port}/ (playground /, API /v1, docs /docs, "
        f"metrics /metrics; {how}){'' if api_key else '; no API key set'}",
        flush=True,
    )
    if workers > 1:  # the workers load their own copies; this process only supervises them
        del app
        gc.collect()
        spec = worker_spec(runs, checkpoint, limits, workers)
        serve_workers(spec, host, port, api_key, workers, worker_timeout, limits.max_body_bytes)
        return
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
