"""`genlab serve` at scale: long generations (past the model's 64-token context) and several worker processes,
against one worker and against a per-request `transformers` server, in one run on one machine.

It reuses serve_benchmark.py's run, servers, load generator and accounting (read its docstring), and adds:

- `max_tokens` 256 beside 48: a request of 256 new tokens runs four contexts past the window, where a
  position-table model restarts its window every half context (genlab.models.generation.window_length);
- `genlab serve --workers W` for each W in `--workers` (default 1 and 2): W processes, each with its own
  model, sharing the port; CPU is counted over the server's whole process tree, and RSS per worker;
- two rounds over the levels (C clients × max_tokens per server, `--seconds` each; servers interleaved, in
  reverse order in the second round), under four minutes in all; the `transformers` baseline only at 48
  tokens (GPT-2's position table ends at 64);
- requests are plain JSON unless `--stream` (as the first measurement of the cliff was: it measures what the
  server decodes, not how fast this one load generator reads SSE), and the CPU of the server's processes,
  of the load generator and of everything else on the machine, per level: on a shared 2-core machine the
  others' share says how far a level's figure is from the machine's.

Targets: 1 client at 256 tokens ≥ 0.8× its tokens/s at 48; 8 clients ÷ 1 client ≥ 5× at 48 and ≥ 4× at 256
(with the most workers measured); genlab at 8 clients ≥ 4× the baseline at 8.

    python benchmarks/serve_scale_benchmark.py --run /tmp/genlab-serve-benchmark/char-gpt   # ~3.5 minutes
    python benchmarks/serve_scale_benchmark.py --run RUN --seconds 2 --warmup-seconds 1 --out-dir /tmp/s  # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_benchmark import (  # noqa: E402  (the same servers, load and accounting as the serve benchmark)
    BASELINE,
    DEFAULT_OUT,
    Server,
    cpu_seconds,
    fmt,
    free_port,
    machine_busy_seconds,
    machine_info,
    rss_mb,
    run_level,
    train_run,
)

TOKENS = (48, 256)
CLIENTS = (1, 8)
TARGETS = {"long_over_short_1_client": 0.8, "8_over_1_at_48": 5.0, "8_over_1_at_256": 4.0, "8_over_baseline_8": 4.0}


def tree(pid: int) -> list[int]:
    """A process and all its descendants (a multi-worker server: the supervisor and its workers)."""
    found, queue = [], [pid]
    while queue:
        p = queue.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                queue += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return found


def tree_cpu(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        try:
            total += cpu_seconds(p)
        except OSError:
            continue
    return total


def worker_rss(server: Server) -> list[float]:
    """RSS (MB) of each process that serves: the workers, or the server itself when it has none."""
    pids = [p for p in tree(server.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return [round(rss_mb(p), 1) for p in pids or [server.pid]]


async def level(server: Server, label: str, clients: int, tokens: int, args: argparse.Namespace) -> dict[str, Any]:
    settings = {"max_tokens": tokens, "temperature": 1.0}
    cpu, busy, mine = tree_cpu(server.pid), machine_busy_seconds(), time.process_time()
    _, result = await run_level(server, server.model, clients, args.seconds, 100_000, settings, clients * tokens)
    cpu, busy, mine = tree_cpu(server.pid) - cpu, machine_busy_seconds() - busy, time.process_time() - mine
    wall = result["wall_seconds"]
    result |= {"server": label, "max_tokens": tokens, "server_cpu_seconds": cpu, "server_cpu_fraction": cpu / wall}
    result |= {"load_generator_cpu_fraction": mine / wall, "others_cpu_fraction": max(0.0, busy - cpu - mine) / wall}
    result["rss_mb_per_worker"] = worker_rss(server)
    print(
        f"{label:>10} C={clients:>2} {tokens:>3} tokens: {result['requests']:>5} requests, "
        f"{result['tokens_per_second']:7.1f} tok/s, TTFT p50 {fmt(result['ttft_ms']['p50'])} ms "
        f"p95 {fmt(result['ttft_ms']['p95'])} ms, errors {result['errors']}, CPU {result['server_cpu_fraction']:.2f}, "
        f"load generator {result['load_generator_cpu_fraction']:.2f}, others {result['others_cpu_fraction']:.2f}",
        flush=True,
    )
    return result


async def benchmark(args: argparse.Namespace, servers: dict[str, Server], results: dict) -> None:
    for label, server in servers.items():  # warm-up, not counted
        warm = {"max_tokens": 48, "temperature": 1.0}
        await run_level(server, server.model, 8, args.warmup_seconds, 100_000, warm, seed_base=7)
        results["rss_mb_per_worker"][label] = {"after_warmup": worker_rss(server)}
    for r in range(args.rounds):  # rounds and servers interleaved, so that load from elsewhere falls on all
        for tokens in TOKENS:
            for clients in CLIENTS:
                for label, server in list(servers.items())[:: 1 if r % 2 == 0 else -1]:
                    if label == "baseline" and (tokens != 48 or clients != 8):
                        continue
                    results["levels"].append(await level(server, label, clients, tokens, args) | {"round": r + 1})
    for label, server in servers.items():
        results["rss_mb_per_worker"][label]["after_all_levels"] = worker_rss(server)


QUIET = 0.15  # others' CPU (cores) under which a level counts as measured on a quiet machine


def tok_s(results: dict, server: str, clients: int, tokens: int, quiet: bool = False) -> float | None:
    """Tokens/s of a level, its rounds pooled (their tokens over their wall time); `quiet`: only the rounds
    during which other processes used less than QUIET cores."""
    key = (server, clients, tokens)
    found = [lv for lv in results["levels"] if (lv["server"], lv["clients"], lv["max_tokens"]) == key]
    found = [lv for lv in found if lv["others_cpu_fraction"] < QUIET] if quiet else found
    wall = sum(lv["wall_seconds"] for lv in found)
    return sum(lv["completion_tokens"] for lv in found) / wall if wall else None


def ratios(results: dict, most: str, quiet: bool = False) -> dict[str, float | None]:
    def ratio(a: tuple, b: tuple) -> float | None:
        x, y = tok_s(results, *a, quiet=quiet), tok_s(results, *b, quiet=quiet)
        return x / y if x and y else None

    return {
        "long_over_short_1_client": ratio((most, 1, 256), (most, 1, 48)),
        "8_over_1_at_48": ratio((most, 8, 48), (most, 1, 48)),
        "8_over_1_at_256": ratio((most, 8, 256), (most, 1, 256)),
        "8_over_baseline_8": ratio((most, 8, 48), ("baseline", 8, 48)),
    }


def write_markdown(results: dict, path: Path) -> None:
    m, most = results["machine"], results["most_workers"]
    lines = [
        "# `genlab serve` at scale: long generations and worker processes",
        "",
        f"Produced by `{results['command']}` on {m['date']} ({m['cpu_count']} CPUs, {m['cpu_model']}); load average "
        f"at start {', '.join(f'{v:.2f}' for v in m['load_average_at_start'])}, at end "
        f"{', '.join(f'{v:.2f}' for v in m['load_average_at_end'])}. Run: `{results['run']}` (char GPT, context 64). "
        f"{'Streamed' if results['stream'] else 'Non-streamed'} requests (TTFT = "
        f"{'first text' if results['stream'] else 'the whole answer'}), temperature 1, {results['rounds']} rounds of "
        f"{results['seconds']} s per level, servers interleaved, one torch thread per worker.",
        "",
        "| round | server | clients | new tokens | requests | TTFT p50 / p95 ms | latency p50 ms | tok/s | errors "
        "| CPU: server / load generator / others | RSS per worker MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for lv in results["levels"]:
        lines.append(
            f"| {lv['round']} | {lv['server']} | {lv['clients']} | {lv['max_tokens']} | {lv['requests']} | "
            f"{fmt(lv['ttft_ms']['p50'])} / {fmt(lv['ttft_ms']['p95'])} | {fmt(lv['latency_ms']['p50'])} | "
            f"{lv['tokens_per_second']:.0f} | {lv['errors']} | {lv['server_cpu_fraction']:.2f} / "
            f"{lv['load_generator_cpu_fraction']:.2f} / {lv['others_cpu_fraction']:.2f} | "
            f"{', '.join(f'{v:.0f}' for v in lv['rss_mb_per_worker'])} |"
        )
    names = {
        "long_over_short_1_client": "1 client: tok/s at 256 new tokens ÷ at 48",
        "8_over_1_at_48": "8 clients ÷ 1 client, 48 tokens",
        "8_over_1_at_256": "8 clients ÷ 1 client, 256 tokens",
        "8_over_baseline_8": "8 clients: genlab ÷ transformers per request, 48 tokens",
    }
    lines += ["", f"| ratio ({most}) | all rounds | quiet rounds only | target |", "|---|---:|---:|---|"]
    for key, value in results["ratios"].items():
        quiet = results["quiet_ratios"][key]
        verdicts = ["–" if v is None else ("met" if v >= TARGETS[key] else "NOT met") for v in (value, quiet)]
        lines.append(
            f"| {names[key]} | {fmt(value, 2)} | {fmt(quiet, 2)} | ≥ {TARGETS[key]}: {verdicts[0]} (all), "
            f"{verdicts[1]} (quiet) |"
        )
    lines += [
        "",
        f"Quiet rounds: the levels during which every other process on the machine used less than {QUIET} of a "
        "core (the machine is shared; a level with more is slowed by them).",
    ]
    lines += ["", "RSS per worker after warm-up → after all levels (MB):", ""]
    for label, rss in results["rss_mb_per_worker"].items():
        lines.append(f"- {label}: {rss['after_warmup']} → {rss['after_all_levels']}")
    lines += [
        "",
        "CPU: CPU seconds ÷ wall time of the server's process tree, of the load generator (this script) and of every "
        "other process on the machine (/proc/stat less the two).",
    ]
    path.write_text("\n".join(lines) + "\n")


def start_servers(args: argparse.Namespace, run: Path, env: dict[str, str]) -> dict[str, Server]:
    servers = {}
    for workers in args.workers:
        port = free_port()
        cmd = [sys.executable, "-m", "genlab", "serve", str(run), "--port", str(port), "--workers", str(workers)]
        kind = "genlab" if args.stream else "genlab-plain"  # (serve_benchmark.run_level streams to "genlab" only)
        servers[f"genlab-w{workers}"] = Server(kind, cmd, port, env, Path(args.work) / f"scale-w{workers}.log")
    port = free_port()
    baseline = [sys.executable, str(BASELINE), str(run), "--port", str(port), "--threads", "1"]
    servers["baseline"] = Server("baseline", baseline, port, env, Path(args.work) / "scale-baseline.log")
    for server in servers.values():
        server.model = run.name
        server.wait_healthy(300)
    return servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a char-gpt-kjv run (default: serve_benchmark.py's, trained into --work)")
    parser.add_argument("--work", default="/tmp/genlab-serve-benchmark")
    parser.add_argument("--workers", default="1,2", help="genlab serve --workers values (default 1,2)")
    parser.add_argument("--seconds", type=float, default=8.0, help="load time per level and round (default 8)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stream", action="store_true", help="genlab's requests streamed (default: plain JSON)")
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    run = Path(args.run).resolve() if args.run else train_run(Path(args.work))[0]
    Path(args.work).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    results: dict[str, Any] = {
        "command": shlex.join(["python", "benchmarks/serve_scale_benchmark.py", *sys.argv[1:]]),
        "machine": machine_info(),
        "run": str(run),
        "seconds": args.seconds,
        "rounds": args.rounds,
        "stream": args.stream,
        "levels": [],
        "rss_mb_per_worker": {},
        "most_workers": f"genlab-w{max(args.workers)}",
    }
    servers: dict[str, Server] = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops the servers
    try:
        servers = start_servers(args, run, env)
        asyncio.run(benchmark(args, servers, results))
    finally:
        for server in servers.values():
            server.stop()
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["ratios"], results["targets"] = ratios(results, results["most_workers"]), TARGETS
    results["quiet_ratios"] = ratios(results, results["most_workers"], quiet=True)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve_scale.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, out / "serve_scale.md")
    print((out / "serve_scale.md").read_text())


if __name__ == "__main__":
    main()
