"""`genlab serve --workers N`: N processes, each with its own copy of the models and its own batcher, all
accepting connections on one listening socket.

Why processes: one process decodes and speaks HTTP under one GIL, so it uses one core however many clients
wait. N processes use N cores. The front that shares the load is the kernel: every worker waits in `accept`
on the same socket and an idle one takes the next connection (uvicorn's supervisor binds it once and
passes it to each worker). The supervisor pings every worker each half second; one that died or stopped
answering is killed and replaced. A dead worker's open connections are closed by the kernel, so its
in-flight requests fail at once with a closed connection (a client never waits for an answer that cannot
come); the other workers keep serving meanwhile.

The workers are spawned (not forked: torch's threads do not survive a fork) and build their app from
what the parent puts in the environment (`SPEC`), since a spawned process starts from nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from fastapi import FastAPI

from genlab import api
from genlab.errors import GenlabError
from genlab.serve.app import create_app
from genlab.serve.metrics import rss_mb
from genlab.serve.schemas import Limits

SPEC = "GENLAB_SERVE_SPEC"  # JSON: runs, checkpoint, limits, threads (the key travels as GENLAB_API_KEY)


def default_workers() -> int:
    """One worker per core the process may use, at most 4: each holds its own models (RSS ~350 MB for the
    char GPT), and past the cores more workers only take turns."""
    return max(1, min(len(os.sched_getaffinity(0)), 4))


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


def worker_spec(runs: list[str | Path], checkpoint: str, limits: Limits, workers: int) -> str:
    """What a worker needs to build its app; each gets its share of the cores as torch threads."""
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    runs = [str(Path(run).resolve()) for run in runs]
    return json.dumps({"runs": runs, "checkpoint": checkpoint, "limits": asdict(limits), "threads": threads})


def app_from_environment() -> FastAPI:
    """A worker's app (uvicorn's factory, called in each spawned worker)."""
    spec = json.loads(os.environ[SPEC])
    torch.set_num_threads(spec["threads"])
    handles = open_runs(spec["runs"], spec["checkpoint"])
    app = create_app(handles, Limits(**spec["limits"]), os.environ.get("GENLAB_API_KEY") or None)
    print(f"genlab: worker {os.getpid()} has loaded its models (RSS {rss_mb():.0f} MB)", flush=True)
    return app


def serve_workers(spec: str, host: str, port: int, api_key: str | None, workers: int) -> None:
    """Run `workers` processes behind one socket until interrupted (the caller has checked the runs open)."""
    import uvicorn  # the server itself: only this command needs it

    os.environ[SPEC] = spec  # spawned workers inherit the environment
    if api_key:
        os.environ["GENLAB_API_KEY"] = api_key
    uvicorn.run(
        f"{__name__}:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        timeout_graceful_shutdown=5,
        timeout_worker_healthcheck=30,  # a worker deep in a long batch still answers; a hung one is replaced
    )
