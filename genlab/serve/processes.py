"""`genlab serve --workers N`: N worker processes, each with its own copy of the models and its own batcher,
behind one front (genlab.serve.front) that holds the port and hands each request to the worker with the
fewest requests in flight.

Why processes: one process decodes and speaks HTTP under one GIL, so it uses one core however many clients
wait. N processes use N cores. Why a front that balances requests: a client keeps its connection for all its
requests, so anything that spreads connections (SO_REUSEPORT's hash, one shared accept socket) leaves the
load uneven for as long as the clients stay (measured: 5 rows a step on one worker, 2 on the other, under 8
clients). The front runs in this process, the supervisor's, on an asyncio loop: it only parses HTTP (h11) and
copies bytes, so it costs a few per cent of a core.

The supervisor, on the same loop: every half second it looks at each worker. One that has died is replaced at
once; one that still runs but has not answered its health probe for `--worker-timeout` seconds
(genlab.serve.liveness) is killed and replaced the same way. A new worker gets requests once its models are
loaded. A dead worker's requests are answered with an error by the front at once: 502 before its answer began,
a closed connection mid-answer (a client never waits for an answer that cannot come); the other workers keep
serving meanwhile. /metrics sums every worker's counts (genlab.serve.metrics). SIGTERM or SIGINT stops the
front, then the workers (each finishes what it is answering, 5 s at most), then this process.

The workers are spawned (not forked: torch's threads do not survive a fork) and build their app from
what the parent puts in the environment (`SPEC`), since a spawned process starts from nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI

from genlab import api
from genlab.errors import GenlabError
from genlab.serve.app import create_app
from genlab.serve.front import Backend, Balancer, Front
from genlab.serve.liveness import Liveness, probe, requests_path, socket_path, unix_socket
from genlab.serve.metrics import forget_process, rss_mb, shared_metrics
from genlab.serve.schemas import Limits

SPEC = "GENLAB_SERVE_SPEC"  # JSON: runs, checkpoint, limits, threads (the key travels as GENLAB_API_KEY)


def default_workers() -> int:
    """One worker per core the process may use, at most 4: each holds its own models (RSS ~400 MB for the
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
    """A worker's app, built in the spawned worker from the parent's SPEC, with its share of the cores."""
    spec = json.loads(os.environ[SPEC])
    handles = open_runs(spec["runs"], spec["checkpoint"])
    torch.set_num_threads(spec["threads"])  # after loading, which may set genlab's own choice
    app = create_app(handles, Limits(**spec["limits"]), os.environ.get("GENLAB_API_KEY") or None)
    print(f"genlab: worker {os.getpid()} has loaded its models (RSS {rss_mb():.0f} MB)", flush=True)
    return app


def run_worker(folder: str, ready: Any) -> None:
    """One worker process: its models, then its two Unix sockets (requests from the front, probes from the
    supervisor), until stopped (SIGTERM from the supervisor, or Ctrl-C). `ready` is set once its models'
    threads run."""
    import uvicorn  # the server itself: only this command needs it

    try:
        probes = socket_path(folder, os.getpid())
        app = Liveness(app_from_environment(), ready.set, str(probes))
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
        sockets = [unix_socket(requests_path(folder, os.getpid())), unix_socket(probes)]
        uvicorn.Server(config).run(sockets=sockets)
    except KeyboardInterrupt:  # Ctrl-C while it was still loading
        pass


@dataclass(eq=False)
class Worker:
    process: Any  # multiprocessing.Process
    ready: Any  # multiprocessing.Event: set once it serves
    backend: Backend | None = None  # how the front sees it, once it serves
    answered: float = 0.0  # time.monotonic() of its last health answer (from `ready` on)


class Supervisor:
    """`workers` worker processes, each replaced when it dies or stops answering its health probe for `timeout`
    seconds; the ones that serve are `balancer`'s backends. `folder` holds their sockets."""

    def __init__(self, workers: int, folder: Path, timeout: float, balancer: Balancer):
        self.folder, self.timeout, self.balancer = folder, timeout, balancer
        self.context = multiprocessing.get_context("spawn")
        self.workers = [self.start() for _ in range(workers)]

    def start(self) -> Worker:
        ready = self.context.Event()
        process = self.context.Process(target=run_worker, args=(str(self.folder), ready), name="genlab-worker")
        process.start()
        return Worker(process, ready)

    async def watch(self, stopping: asyncio.Event) -> None:
        """Look at every worker twice a second until `stopping` is set."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 0.5)
            if stopping.is_set():
                return
            await asyncio.gather(*(self.check(i) for i in range(len(self.workers))))

    async def check(self, i: int) -> None:
        worker = self.workers[i]
        if not worker.process.is_alive():
            self.replace_dead(i)
            return
        if not worker.ready.is_set():
            return
        pid = worker.process.pid
        if worker.backend is None:  # it serves from now on: the front sends it requests, its deadline runs
            worker.backend, worker.answered = Backend(pid, str(requests_path(self.folder, pid))), time.monotonic()
            self.balancer.backends.append(worker.backend)
        answered = await asyncio.to_thread(probe, socket_path(self.folder, pid), min(1.0, self.timeout))
        worker.backend.answering = answered
        if answered:
            worker.answered = time.monotonic()
        elif time.monotonic() - worker.answered >= self.timeout and self.workers[i] is worker:
            print(
                f"genlab: worker {pid} has not answered its health probe for {self.timeout:g} s; "
                "killed it, starting another",
                flush=True,
            )
            worker.process.kill()  # SIGKILL: a stopped or deadlocked process handles no SIGTERM
            await asyncio.to_thread(worker.process.join)
            self.replace(i)

    def replace_dead(self, i: int) -> None:
        process = self.workers[i].process
        if not self.workers[i].ready.is_set():  # it never served: its models or its socket fail, and would again
            raise GenlabError(f"a worker failed to start (exit code {process.exitcode}); its error is above")
        print(f"genlab: worker {process.pid} died (exit code {process.exitcode}); starting another", flush=True)
        self.replace(i)

    def replace(self, i: int) -> None:
        """A new worker in place of the dead one: the front stops sending it requests, its live gauges leave
        /metrics (its counts stay)."""
        old = self.workers[i]
        if old.backend in self.balancer.backends:
            self.balancer.backends.remove(old.backend)
        for path in (socket_path(self.folder, old.process.pid), requests_path(self.folder, old.process.pid)):
            path.unlink(missing_ok=True)
        forget_process(old.process.pid)
        self.workers[i] = self.start()

    def stop(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: uvicorn finishes what it is answering (5 s at most)
        for worker in self.workers:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()


async def supervise(host: str, port: int, workers: int, folder: Path, timeout: float, max_body_bytes: int) -> None:
    """The front on host:port and `workers` supervised workers, until SIGINT or SIGTERM."""
    loop, stopping, balancer = asyncio.get_running_loop(), asyncio.Event(), Balancer()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    front = await Front(balancer, max_body_bytes).listen(host, port)
    supervisor = Supervisor(workers, folder, timeout, balancer)
    try:
        await supervisor.watch(stopping)
    finally:
        front.close()  # no new connections; the ones open end with their workers
        await asyncio.to_thread(supervisor.stop)


def serve_workers(
    spec: str,
    host: str,
    port: int,
    api_key: str | None,
    workers: int,
    worker_timeout: float = 30.0,
    max_body_bytes: int = Limits.max_body_bytes,
) -> None:
    """Run the front on host:port and `workers` processes until interrupted (the caller has checked that the runs
    open); a worker that has not answered a health probe for `worker_timeout` seconds is replaced."""
    os.environ[SPEC] = spec  # spawned workers inherit the environment
    if api_key:
        os.environ["GENLAB_API_KEY"] = api_key
    with tempfile.TemporaryDirectory(prefix="genlab-serve-") as folder, shared_metrics(Path(folder) / "metrics"):
        asyncio.run(supervise(host, port, workers, Path(folder), worker_timeout, max_body_bytes))
