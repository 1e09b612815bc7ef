"""`genlab serve --workers 2`: two processes answer at once behind one port, the requests of one client
connection are spread over both, /metrics counts the requests of both, a worker that dies is replaced while
its in-flight request fails at once (a closed connection, never a hang), one that stops answering (SIGSTOP)
is killed and replaced after --worker-timeout (5 s here), and SIGTERM stops the whole server within seconds,
also just after its workers died (and `--workers 1` too)."""

from __future__ import annotations

import contextlib
import os
import re
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
def tiny_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("workers")
    tiny = TASKS["lm"].tiny(folder / "data")
    return api.fit(tiny.recipe, folder / "lm", [*tiny.overrides, "train.max_iters=2", "train.eval_interval=2"])[0]


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory) -> Iterator[tuple[str, subprocess.Popen]]:
    folder, run = tmp_path_factory.mktemp("server"), tiny_run
    port = free_port()
    env = dict(os.environ, GENLAB_THREADS="1")
    command = [sys.executable, "-m", "genlab", "serve", str(run), "--port", str(port), "--workers", "2"]
    log, errors = folder / "out.log", folder / "err.log"  # files: a test reads the supervisor's lines as they come
    with log.open("w") as out, errors.open("w") as err:
        process = subprocess.Popen([*command, "--worker-timeout", "5"], stdout=out, stderr=err, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        up = wait_for(lambda: len(workers_of(process.pid)) == 2 and httpx.get(f"{url}/health").is_success, 90)
        assert up, errors.read_text() if process.poll() is not None else "no answer"
        # both workers have loaded their model once each answered a health check
        assert wait_for(lambda: len({worker(url) for _ in range(20)}) == 2, 60)
        yield url, process, log
    finally:
        if process.poll() is None:  # (the last test stops it with SIGTERM)
            process.send_signal(signal.SIGINT)  # Ctrl-C: the supervisor stops its workers
            process.wait(timeout=30)
    assert process.returncode == 0 and "Traceback" not in errors.read_text(), errors.read_text()
    assert "2 worker processes" in log.read_text()


def worker(url: str) -> int:
    """The pid of the worker a new connection lands on."""
    with httpx.Client() as client:
        return int(client.get(f"{url}/health").headers["x-genlab-worker"])


def test_two_workers_stream_at_the_same_time(server):
    url, _, _ = server
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


def test_the_requests_of_one_connection_are_spread_over_both_workers(server):
    url, _, _ = server
    with httpx.Client(timeout=30) as client:  # one connection, kept (a client's usual way)
        answers = [
            client.post(f"{url}/v1/completions", json={**LONG, "stream": False, "max_tokens": 4}) for _ in range(6)
        ]
    assert all(answer.is_success for answer in answers)
    assert len({answer.headers["x-genlab-worker"] for answer in answers}) == 2


def completions_counted(url: str) -> float:
    """/metrics' count of answered completions (whichever worker answers the scrape)."""
    found = re.search(r'^genlab_requests_total\{endpoint="/v1/completions",status="200"\} (\S+)$', scrape(url), re.M)
    return float(found.group(1)) if found else 0.0


def scrape(url: str) -> str:
    with httpx.Client() as client:  # a new connection: it may land on either worker
        return client.get(f"{url}/metrics").text


def test_metrics_count_the_requests_of_every_worker(server):
    url, _, _ = server
    before, answered_by = completions_counted(url), []
    short = {**LONG, "stream": False, "max_tokens": 4}
    while len(set(answered_by)) < 2 or len(answered_by) < 6:  # at least 6 requests, over both workers
        with httpx.Client(timeout=30) as client:
            answer = client.post(f"{url}/v1/completions", json=short)
        assert answer.is_success
        answered_by.append(int(answer.headers["x-genlab-worker"]))
        assert len(answered_by) < 100, "every request landed on one worker"
    # each worker counts a request just after answering it: wait for the last counts, then every scrape agrees
    assert wait_for(lambda: completions_counted(url) - before == len(answered_by), 10)
    assert {completions_counted(url) - before for _ in range(10)} == {len(answered_by)}
    assert re.search(r'^genlab_tokens_generated_total\{model="lm"\} \S+$', scrape(url), re.M)


def test_a_dead_worker_is_replaced_and_its_request_fails_at_once(server):
    url, process, _ = server
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


def test_a_hung_worker_is_replaced_and_the_server_keeps_answering(server):
    url, process, log = server
    assert wait_for(lambda: len({worker(url) for _ in range(20)}) == 2, 60)  # both serve (one may be new)
    victim = worker(url)
    os.kill(victim, signal.SIGSTOP)  # alive, but answers nothing: only the health probe can tell
    replaced = False
    try:
        replaced = wait_for(lambda: victim not in workers_of(process.pid) and len(workers_of(process.pid)) == 2, 30)
    finally:
        if not replaced:  # let it go on, so that the server stops cleanly
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGCONT)
    assert replaced
    assert f"worker {victim} has not answered its health probe for 5 s" in log.read_text()
    answers = [httpx.post(f"{url}/v1/completions", json={**LONG, "stream": False, "max_tokens": 4}) for _ in range(4)]
    assert all(answer.is_success for answer in answers)


def test_sigterm_stops_a_single_process_server(tiny_run, tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "genlab", "serve", str(tiny_run), "--port", str(port), "--workers", "1"]
    with (tmp_path / "err.log").open("w") as err:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=err, env=dict(os.environ, GENLAB_THREADS="1")
        )
    try:
        assert wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/health").is_success, 60)
    finally:
        took = stops_on_sigterm(process, set())
    # uvicorn ends by raising the signal it caught again, once it has shut down: killed by SIGTERM, as asked
    assert took < 8 and process.returncode in (0, -signal.SIGTERM), (tmp_path / "err.log").read_text()


def stops_on_sigterm(process: subprocess.Popen, pids: set[int], seconds: float = 8) -> float:
    """Send SIGTERM to the server; how long it and the processes `pids` took to end (killed after `seconds`)."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
        assert wait_for(lambda: not any(map(running, pids)), 2)
    finally:  # never leave a server behind, whatever happened
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in filter(running, pids):
            os.kill(pid, signal.SIGKILL)
    return time.monotonic() - started


def running(pid: int) -> bool:
    """Whether process `pid` exists and has not exited (a zombie waits to be reaped: it has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_stops_the_whole_server_even_after_its_workers_died(server):
    url, process, _ = server  # (the last test of this module: the server is gone after it)
    victims = workers_of(process.pid)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    time.sleep(1)  # the supervisor has seen them die and is starting others
    replacements = workers_of(process.pid) - victims
    assert replacements, "no worker was started in place of the dead ones"
    assert stops_on_sigterm(process, replacements) < 8 and process.returncode == 0
