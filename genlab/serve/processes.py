"""`genlab serve --workers N`: N processes, each with its own copy of the models and its own batcher, all
listening on one port.

Why processes: one process decodes and speaks HTTP under one GIL, so it uses one core however many clients
wait. N processes use N cores. The front that shares the load is the kernel: each worker listens on its own
socket bound to the same port with SO_REUSEPORT, and the kernel spreads new connections over the sockets by a
hash of their addresses. (One socket shared by every worker, uvicorn's and gunicorn's default, was measured to
send a burst of new connections all to one worker: the first to wake accepts every pending one, so 8 clients
that connect together were served by one process while the other idled.)

This process supervises: every half second it looks at each worker, and one that has died is replaced at
once (by one that binds its own socket when its models are loaded). One that still runs but has not answered
its health probe for `--worker-timeout` seconds (genlab.serve.liveness) is killed and replaced the same way. A
dead worker's open connections are closed by the kernel, so its in-flight requests fail at once with a closed
connection (a client never waits for an answer that cannot come); the other workers keep serving meanwhile.
/metrics sums every worker's counts (genlab.serve.metrics).

The workers are spawned (not forked: torch's threads do not survive a fork) and build their app from
what the parent puts in the environment (`SPEC`), since a spawned process starts from nothing.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI

from genlab import api
from genlab.errors import GenlabError
from genlab.serve.app import create_app
from genlab.serve.liveness import Liveness, probe, probe_socket, socket_path
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


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket on host:port that other workers' sockets share (SO_REUSEPORT: the kernel spreads connections)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def run_worker(host: str, port: int, folder: str, ready: Any) -> None:
    """One worker process: its models, then its sockets (no connection waits on a worker still loading), until
    stopped (SIGTERM from the supervisor, or Ctrl-C). `ready` is set once its models' threads run."""
    import uvicorn  # the server itself: only this command needs it

    try:
        app = Liveness(app_from_environment(), ready.set)
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
        sockets = [listening_socket(host, port), probe_socket(folder)]
        uvicorn.Server(config).run(sockets=sockets)
    except KeyboardInterrupt:  # Ctrl-C while it was still loading
        pass


@dataclass(eq=False)
class Worker:
    process: Any  # multiprocessing.Process
    ready: Any  # multiprocessing.Event: set once it serves
    answered: float | None = None  # time.monotonic() of its last health answer (from `ready` on)


class Supervisor:
    """`workers` worker processes on host:port, each replaced when it dies or stops answering its health
    probe for `timeout` seconds, until SIGINT or SIGTERM. `folder` holds the probes' sockets."""

    def __init__(self, host: str, port: int, workers: int, folder: Path, timeout: float):
        self.host, self.port, self.folder, self.timeout = host, port, folder, timeout
        self.context = multiprocessing.get_context("spawn")
        self.stopping = threading.Event()
        self.workers = [self.start() for _ in range(workers)]

    def start(self) -> Worker:
        ready = self.context.Event()
        args = (self.host, self.port, str(self.folder), ready)
        process = self.context.Process(target=run_worker, args=args, name="genlab-worker")
        process.start()
        return Worker(process, ready)

    def watch(self) -> None:
        while not self.stopping.wait(0.5):
            for i, worker in enumerate(self.workers):
                if not worker.process.is_alive():
                    self.replace_dead(i)
                elif worker.ready.is_set() and not self.answers(worker):
                    print(
                        f"genlab: worker {worker.process.pid} has not answered its health probe for "
                        f"{self.timeout:g} s; killed it, starting another",
                        flush=True,
                    )
                    worker.process.kill()  # SIGKILL: a stopped or deadlocked process handles no SIGTERM
                    worker.process.join()
                    self.replace(i)

    def answers(self, worker: Worker) -> bool:
        """Whether `worker` answered a health probe within the last `timeout` seconds (probing it now)."""
        now = time.monotonic()
        if worker.answered is None:
            worker.answered = now  # just started serving: its deadline runs from here
        if probe(socket_path(self.folder, worker.process.pid), min(1.0, self.timeout)):
            worker.answered = time.monotonic()
        return time.monotonic() - worker.answered < self.timeout

    def replace_dead(self, i: int) -> None:
        process = self.workers[i].process
        if not self.workers[i].ready.is_set():  # it never served: its models or its socket fail, and would again
            raise GenlabError(f"a worker failed to start (exit code {process.exitcode}); its error is above")
        print(f"genlab: worker {process.pid} died (exit code {process.exitcode}); starting another", flush=True)
        self.replace(i)

    def replace(self, i: int) -> None:
        """A new worker in place of the dead one, whose live gauges leave /metrics (its counts stay)."""
        pid = self.workers[i].process.pid
        socket_path(self.folder, pid).unlink(missing_ok=True)
        forget_process(pid)
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


def serve_workers(
    spec: str, host: str, port: int, api_key: str | None, workers: int, worker_timeout: float = 30.0
) -> None:
    """Run `workers` processes on host:port until interrupted (the caller has checked that the runs open); a
    worker that has not answered a health probe for `worker_timeout` seconds is replaced."""
    os.environ[SPEC] = spec  # spawned workers inherit the environment
    if api_key:
        os.environ["GENLAB_API_KEY"] = api_key
    with tempfile.TemporaryDirectory(prefix="genlab-serve-") as folder, shared_metrics(Path(folder) / "metrics"):
        supervisor = Supervisor(host, port, workers, Path(folder), worker_timeout)

        def stop(*_: Any) -> None:
            supervisor.stopping.set()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            supervisor.watch()
        finally:
            supervisor.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
