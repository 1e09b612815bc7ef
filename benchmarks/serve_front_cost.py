"""What one request costs `genlab serve --workers N`'s front (the supervisor's process) and the worker that answers
it, in CPU milliseconds: 4 clients send 1-token completions back to back over kept connections (so the model's
step is a small part), and the CPU of the front's process and of the workers is read from /proc before and after.

    python benchmarks/serve_front_cost.py RUN              # RUN: any text run (a tiny one will do); ~30 s
    python benchmarks/serve_front_cost.py RUN --workers 1  # the single process, for comparison
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_benchmark import free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_of(pid: int) -> list[int]:
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def send(url: str, body: dict, count: int) -> None:
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            client.post(f"{url}/v1/completions", json=body).raise_for_status()


def wait_healthy(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health").is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"no answer from {url} in {seconds:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=600, help="in all, over 4 clients (default 600)")
    args = parser.parse_args()
    port, run = free_port(), Path(args.run).resolve()
    command = [sys.executable, "-m", "genlab", "serve", str(run), "--port", str(port), "--workers", str(args.workers)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, body = f"http://127.0.0.1:{port}", {"model": run.name, "prompt": "the ", "max_tokens": 1}
    try:
        wait_healthy(url, 120)
        time.sleep(2)  # every worker has loaded its models
        send(url, body, 50)  # warm-up
        workers = workers_of(server.pid)
        front, answering, started = cpu_seconds(server.pid), sum(map(cpu_seconds, workers)), time.perf_counter()
        clients = [threading.Thread(target=send, args=(url, body, args.requests // 4)) for _ in range(4)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        n, wall = args.requests // 4 * 4, time.perf_counter() - started
        front, answering = cpu_seconds(server.pid) - front, sum(map(cpu_seconds, workers)) - answering
    finally:
        server.terminate()
        server.wait()
    who = "the front (supervisor)" if args.workers > 1 else "the one process"
    line = f"--workers {args.workers}: {n / wall:.0f} requests/s; CPU ms a request: {who} {1000 * front / n:.3f}"
    print(line, end="")
    print(f", the workers {1000 * answering / n:.3f}" if args.workers > 1 else "")


if __name__ == "__main__":
    main()
