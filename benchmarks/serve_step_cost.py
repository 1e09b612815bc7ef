"""What one continuous-batching step costs the served char GPT, in process (no HTTP): the bound under the
8-client ÷ 1-client ratios of serve_scale_benchmark.py.

Closed loop, as the scale benchmark's clients: B sequences are always in the batch (one that ends is replaced by
a new request: a KJV-like prompt, temperature 1, its own seed) until 6 × B requests of 48 new tokens (1 × B of
256) have ended. Per level: tokens per second of wall time and per CPU second of the decoding thread, and the
step's CPU split into the model's one-token forward, sampling, prefills (new requests, and past the context the
window read again every half context) and the rest (the batch's bookkeeping). One torch thread.

Then the decoding loop in a second thread while the first runs pure-Python work in an event loop (as the
server's HTTP side does): a thread that runs torch operations gives up Python's GIL at every operation and waits
to take it back. And the same loop in two processes at once (B = 1 and B = 4 in each: what `--workers 2` runs
with 2 and 8 clients), against one process alone: how far two processes on two cores are from twice one. Last, the real
server (`--workers 1`) under 1 and 8 clients: CPU per token of its decoding thread and of its event loop.

    python benchmarks/serve_step_cost.py --run /tmp/genlab-serve-benchmark/char-gpt   # ~1 minute
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import threading
import time
from collections import defaultdict
from functools import wraps
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_benchmark import DEFAULT_OUT, PROMPTS, Server, batch_metrics, free_port, run_level  # noqa: E402  (the same load)

from genlab import api  # noqa: E402
from genlab.models.batching import ContinuousBatch, Sequence  # noqa: E402
from genlab.models.decoding import OneTokenDecoder  # noqa: E402
from genlab.models.generation import TextPieces  # noqa: E402

# the parts of a step timed apart (CPU of the calling thread)
PARTS = {
    "forward": (OneTokenDecoder, "__call__"),
    "sampling": (ContinuousBatch, "_sample_rows"),
    "prefill": (ContinuousBatch, "_prefill"),
}
SPENT: dict[str, float] = defaultdict(float)


def timed(name: str, method):
    @wraps(method)
    def wrapper(*args, **kwargs):
        start = time.thread_time()
        try:
            return method(*args, **kwargs)
        finally:
            SPENT[name] += time.thread_time() - start

    return wrapper


def closed_loop(decoding, rows: int, new_tokens: int, requests: int) -> dict:
    """`rows` sequences always decoding until `requests` have ended -> tokens/s and the step's CPU split (ms)."""
    batch, pieces, started = ContinuousBatch(decoding.model, 16), {}, 0

    def admit() -> None:
        nonlocal started
        prompt = decoding.encode(PROMPTS[started % len(PROMPTS)])
        seq = Sequence(prompt, new_tokens, 1.0, None, None, decoding.stop_ids, started)
        batch.add(seq)
        pieces[seq], started = TextPieces(decoding.tokenizer), started + 1

    for _ in range(rows):
        admit()
    SPENT.clear()
    ended = tokens = steps = 0
    cpu, wall = time.thread_time(), time.perf_counter()
    while ended < requests:
        for seq, token in batch.step():
            pieces[seq].add(token)  # the server's detokenising, per token
            tokens += 1
            if seq.done:
                ended += 1
                admit()
        steps += 1
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    split = {name: 1e3 * SPENT[name] / steps for name in PARTS}
    split["rest"] = 1e3 * cpu / steps - sum(split.values())
    return {
        "rows": rows,
        "new_tokens": new_tokens,
        "tok_s": tokens / wall,
        "tok_per_cpu_s": tokens / cpu,
        "step_ms": 1e3 * cpu / steps,
        **{f"{name}_ms": ms for name, ms in split.items()},
    }


def worker(run: str, rows: int, requests: int, start, out) -> None:
    torch.set_num_threads(1)
    decoding = api.load(run, "last").text_decoding()
    closed_loop(decoding, rows, 8, 2 * rows)  # warm-up
    start.wait()  # every process loaded and warm: they decode at the same time
    out.put(closed_loop(decoding, rows, 48, requests))


def concurrently(run: str, rows: int, processes: int) -> list[dict]:
    """The 48-token loop at `rows` in `processes` processes started together."""
    ctx = multiprocessing.get_context("spawn")
    out, start = ctx.Queue(), ctx.Barrier(processes)
    procs = [ctx.Process(target=worker, args=(run, rows, 40 * rows, start, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return results


def beside_python(decoding, rows: int, busy_ms: float, every_ms: float) -> dict:
    """The 48-token loop in a second thread (as the server's decoding thread) while this one runs an event loop
    that does `busy_ms` of pure Python every `every_ms` (as HTTP work would): what sharing the GIL costs."""
    done: dict = {}
    thread = threading.Thread(target=lambda: done.update(closed_loop(decoding, rows, 48, 6 * rows)))

    async def python_work() -> None:
        while thread.is_alive():
            end = time.thread_time() + busy_ms / 1e3
            while time.thread_time() < end:
                pass
            await asyncio.sleep(every_ms / 1e3)

    thread.start()
    if busy_ms:
        asyncio.run(python_work())
    thread.join()
    return {"busy_ms": busy_ms, "every_ms": every_ms, **done}


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process (/proc/PID/task/TID/stat: utime + stime)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def served(run: str, out_dir: Path) -> list[dict]:
    """`genlab serve --workers 1` under 1 and 8 clients (plain JSON, 48 new tokens, 6 s each): CPU per token of
    its decoding thread and of its event loop (the main thread), and the mean rows per step."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_THREADS": "1"}
    cmd = [sys.executable, "-m", "genlab", "serve", run, "--port", str(port), "--workers", "1"]
    server = Server("genlab-w1", cmd, port, env, out_dir / "step-cost-server.log")
    levels = []
    try:
        server.wait_healthy(120)
        settings = {"max_tokens": 48, "temperature": 1.0}
        asyncio.run(run_level(server, Path(run).name, 8, 2, 10_000, settings, 0))  # warm-up
        for clients in (1, 8):
            before, batch = thread_cpu(server.pid), batch_metrics(server)
            _, level = asyncio.run(run_level(server, Path(run).name, clients, 6, 10_000, settings, clients))
            after, batch_after = thread_cpu(server.pid), batch_metrics(server)
            spent = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
            main = spent.pop(server.pid, 0.0)
            steps = batch_after[1] - batch[1]
            tokens = batch_after[0] - batch[0]
            levels.append(
                {
                    "clients": clients,
                    "tok_s": level["tokens_per_second"],
                    "rows_per_step": tokens / steps if steps else 0.0,
                    "decoding_ms_per_token": 1e3 * max(spent.values()) / tokens,
                    "event_loop_ms_per_token": 1e3 * main / tokens,
                    "requests": level["requests"],
                }
            )
    finally:
        server.stop()
    return levels


def write_markdown(results: dict, path: Path) -> None:
    lines = [
        "# One continuous-batching step of the served char GPT, in process",
        "",
        f"Produced by `{results['command']}` on {results['when']} ({os.cpu_count()} CPUs); load average at start "
        f"{results['load_start']}, at end {results['load_end']}. One torch thread; temperature 1; closed loop "
        "(an ended request is replaced at once). CPU: the decoding thread's.",
        "",
        "| sequences | new tokens | tok/s | tok per CPU s | step ms (CPU) | forward | sampling | prefills | rest |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["levels"]:
        lines.append(
            f"| {r['rows']} | {r['new_tokens']} | {r['tok_s']:.0f} | {r['tok_per_cpu_s']:.0f} | {r['step_ms']:.3f} | "
            f"{r['forward_ms']:.3f} | {r['sampling_ms']:.3f} | {r['prefill_ms']:.3f} | {r['rest_ms']:.3f} |"
        )
    lines += (
        []
        if not results["processes"]
        else [
            "",
            "| processes at once | sequences each | tok/s of each | sum | sum ÷ one process alone |",
            "|---:|---:|---|---:|---:|",
        ]
    )
    for rows, runs in results["processes"].items():
        alone = runs["1"][0]["tok_s"]
        for count, each in runs.items():
            rates = [r["tok_s"] for r in each]
            lines.append(
                f"| {count} | {rows} | {', '.join(f'{x:.0f}' for x in rates)} | {sum(rates):.0f} | "
                f"{sum(rates) / alone:.2f} |"
            )
    lines += [
        "",
        "| decoding thread beside Python work in another thread | sequences | tok/s | tok per CPU s | step ms (CPU) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results["gil"]:
        work = f"{r['busy_ms']} ms every {r['every_ms']} ms" if r["busy_ms"] else "none"
        lines.append(f"| {work} | {r['rows']} | {r['tok_s']:.0f} | {r['tok_per_cpu_s']:.0f} | {r['step_ms']:.3f} |")
    lines += [
        "",
        "| `genlab serve --workers 1`, 48 new tokens | rows per step | tok/s | decoding thread, CPU ms per token |"
        " event loop, CPU ms per token |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results["served"]:
        lines.append(
            f"| {r['clients']} client(s) | {r['rows_per_step']:.2f} | {r['tok_s']:.0f} | "
            f"{r['decoding_ms_per_token']:.3f} | {r['event_loop_ms_per_token']:.3f} |"
        )
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a char-GPT run (serve_benchmark.py trains one)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--one-core", action="store_true", help="skip the two-process part (one core held)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, (cls, method) in PARTS.items():
        setattr(cls, method, timed(name, getattr(cls, method)))
    results = {
        "command": "python benchmarks/serve_step_cost.py --run " + args.run + " --one-core" * args.one_core,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    decoding = api.load(args.run, "last").text_decoding()
    closed_loop(decoding, 4, 8, 8)  # warm-up
    results["levels"] = [
        closed_loop(decoding, rows, new_tokens, (6 if new_tokens == 48 else 1) * rows)
        for rows in (1, 4, 8)
        for new_tokens in (48, 256)
    ]
    results["gil"] = [beside_python(decoding, 8, busy, 2.0) for busy in (0.0, 0.2, 0.5)]
    results["processes"] = {}
    if not args.one_core:
        results["processes"] = {rows: {str(n): concurrently(args.run, rows, n) for n in (1, 2)} for rows in (1, 4)}
    results["served"] = served(args.run, args.out_dir)
    results["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    (args.out_dir / "serve_step_cost.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, args.out_dir / "serve_step_cost.md")
    print((args.out_dir / "serve_step_cost.md").read_text())


if __name__ == "__main__":
    main()
