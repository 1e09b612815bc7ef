"""`genlab serve --workers 2`: two processes answer at once on one port, and a worker that dies is replaced
while its in-flight request fails at once (a closed connection, never a hang)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from genlab import api
from genlab.tasks import TASKS

LONG = {"model": "lm", "prompt": "the ", "max_tokens": 2048, "temperature": 1.0, "stream": True}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workers_of(pid: int) -> set[int]:
    """The server's worker processes (its children that run the spawned server)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(int(child))
    return found


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, subprocess.Popen]]:
    folder = tmp_path_factory.mktemp("workers")
    tiny = TASKS["lm"].tiny(folder / "data")
    run = api.fit(tiny.recipe, folder / "lm", [*tiny.overrides, "train.max_iters=2", "train.eval_interval=2"])[0]
    port = free_port()
    env = dict(os.environ, GENLAB_THREADS="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "genlab", "serve", str(run), "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        up = wait_for(lambda: len(workers_of(process.pid)) == 2 and httpx.get(f"{url}/health").is_success, 90)
        assert up, process.stderr.read() if process.poll() is not None else "no answer"
        # both workers have loaded their model once each answered a health check
        assert wait_for(lambda: len({worker(url) for _ in range(20)}) == 2, 60)
        yield url, process
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C: the supervisor stops its workers
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in err, err
    assert "2 worker processes" in out


def worker(url: str) -> int:
    """The pid of the worker a new connection lands on."""
    with httpx.Client() as client:
        return int(client.get(f"{url}/health").headers["x-genlab-worker"])


def test_two_workers_stream_at_the_same_time(server):
    url, _ = server
    with httpx.Client(timeout=30) as first, httpx.Client(timeout=30) as second:
        with first.stream("POST", f"{url}/v1/completions", json=LONG) as a:
            next(a.iter_lines())  # a's worker is decoding a long completion...
            busy = int(a.headers["x-genlab-worker"])
            for _ in range(50):  # ... while a connection that lands on the other worker is answered too
                with second.stream("POST", f"{url}/v1/completions", json={**LONG, "max_tokens": 8}) as b:
                    other = int(b.headers["x-genlab-worker"])
                    text = b.read().decode()
                if other != busy:
                    break
                second.close()
                second = httpx.Client(timeout=30)
            assert other != busy and text.endswith("data: [DONE]\n\n")
            assert not a.is_closed  # a was still streaming while b was answered


def test_a_dead_worker_is_replaced_and_its_request_fails_at_once(server):
    url, process = server
    before = workers_of(process.pid)
    started = time.monotonic()
    with httpx.Client(timeout=20) as client, client.stream("POST", f"{url}/v1/completions", json=LONG) as stream:
        lines = stream.iter_lines()
        next(lines)
        victim = int(stream.headers["x-genlab-worker"])
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(httpx.TransportError) as failed:  # the connection closes: no [DONE], no hang
            for line in lines:
                assert line != "data: [DONE]"
    assert not isinstance(failed.value, httpx.TimeoutException) and time.monotonic() - started < 15
    assert httpx.post(f"{url}/v1/completions", json={**LONG, "stream": False, "max_tokens": 4}).is_success
    replaced = wait_for(lambda: len(workers_of(process.pid) - before) == 1 and len(workers_of(process.pid)) == 2, 60)
    assert replaced and victim not in workers_of(process.pid)
