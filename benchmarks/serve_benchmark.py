"""`genlab serve` under concurrent load: aggregate tokens/s, time to first token and memory of its continuous
batching, against a naive per-request `transformers` server on the same weights.

What it does, in one script run on one machine:

1. Takes a char-GPT run of genlab/recipes/char-gpt-kjv.yaml (4 layers, 128 dims, context 64): `--run PATH`, or
   else trains one quickly into `--work` with the genlab CLI (250 steps; throughput does not depend on
   how well it is trained). The run used is recorded.
2. Starts two servers as subprocesses on loopback: `python -m genlab serve RUN` (streaming, continuous
   batching) and benchmarks/serve_hf_baseline.py (FastAPI + `model.generate` on RUN/model, one request at
   a time behind a lock, non-streaming). Both get the same torch thread count (`--threads`, default 1:
   the load generator shares the machine's cores; 0 leaves each server its own default) and the same
   sampling: temperature 1.0, no top-k/top-p, exactly `--max-tokens` new tokens per request.
3. Load: asyncio + httpx in this process. At each concurrency level C (1, 4, 8, 16) C clients send
   requests back to back (short KJV-like prompts, a distinct seed per request) for `--seconds` (at most
   `--max-requests` per level). genlab's requests stream (`stream: true` with usage); time to first token
   is the first chunk with non-empty text. The baseline's are plain JSON, so its time to first token is
   its whole latency. Errors: non-200, a body that is not well-formed SSE (`data: ` lines, [DONE] last),
   a missing usage or [DONE]. Aggregate tokens/s = completion tokens (from usage) / the level's wall
   time (first request sent to last answer received). A warm-up level at the highest concurrency runs
   first on each server and is not counted. Then `--rounds` passes over the levels, the two servers
   interleaved at each C (genlab first in odd rounds, the baseline first in even ones); the table pools
   the rounds and also lists each round's tokens/s, since the machine may be shared.
4. Memory: each server's VmRSS (/proc/PID/status) after warm-up and after all levels. Also recorded per
   level: each server's CPU seconds (/proc/PID/stat), this load generator's CPU seconds and, for genlab,
   the mean batch size per decoding step (from its /metrics).
5. Writes benchmarks/results/serve/serve_benchmark.{json,md,png} (or `--out-dir`).

    python benchmarks/serve_benchmark.py                          # trains a run into /tmp, ~10 minutes
    python benchmarks/serve_benchmark.py --run runs/char-gpt-kjv  # an existing run
    python benchmarks/serve_benchmark.py --run RUN --seconds 2 --levels 1,2 --warmup-seconds 1 \\
        --out-dir /tmp/serve-smoke                                # smoke mode
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "serve"
BASELINE = ROOT / "benchmarks" / "serve_hf_baseline.py"
PROMPTS = [
    "In the beginning",
    "And God said",
    "The LORD is my",
    "Blessed are the",
    "And it came to",
    "Thus saith the",
    "For God so",
    "Let there be",
    "And the earth",
    "Hear, O Israel",
    "The grace of",
    "And Jesus said",
    "Behold, I come",
    "Unto thee, O",
    "Praise ye the",
    "And he answered",
]
TARGETS = {"genlab_8_over_genlab_1": 4.0, "genlab_8_over_baseline_8": 4.0, "rss_after_over_warmup_max": 1.1}


# ------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def os_threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs: /proc/stat less idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class Server:
    """A server subprocess, its log in a file; stopped with terminate, then kill."""

    def __init__(self, name: str, cmd: list[str], port: int, env: dict[str, str], log: Path):
        self.name, self.cmd, self.port, self.log_path = name, cmd, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_healthy(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({self.proc.returncode}) while starting:\n" + self.log_path.read_text()[-3000:]
                )
            try:
                r = httpx.get(self.url + "/health", timeout=2)
                if r.status_code == 200:
                    return r.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(
            f"{self.name} did not answer /health within {timeout:.0f} s:\n" + self.log_path.read_text()[-3000:]
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


# ------------------------------------------------------------------ load


class Tally:
    def __init__(self) -> None:
        self.ttft: list[float] = []  # seconds, successful requests
        self.latency: list[float] = []
        self.tokens = 0
        self.requests = 0
        self.errors = 0
        self.short = 0  # completions with fewer tokens than asked (no error, but counted)
        self.error_samples: list[str] = []

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(message[:300])


def parse_sse(raw: bytes) -> tuple[str | None, int | None, str | None]:
    """A whole SSE body -> (first non-empty text, completion_tokens, problem). Events are `data: ...`
    blocks separated by blank lines; `data: [DONE]` must be the last one."""
    events = raw.split(b"\n\n")
    if events and events[-1].strip() == b"":
        events = events[:-1]
    else:
        return None, None, "body does not end with a blank line"
    tokens, text, done = None, None, False
    for event in events:
        if done:
            return text, tokens, "an event after [DONE]"
        if not event.startswith(b"data: ") or b"\n" in event:
            return text, tokens, f"not a single data: line: {event[:80]!r}"
        payload = event[6:]
        if payload == b"[DONE]":
            done = True
            continue
        try:
            chunk = json.loads(payload)
        except ValueError:
            return text, tokens, f"bad JSON: {payload[:80]!r}"
        if "error" in chunk:
            return text, tokens, f"error event: {chunk['error']}"
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
    if not done:
        return text, tokens, "no [DONE]"
    if tokens is None:
        return text, tokens, "no usage chunk"
    return text, tokens, None


async def streaming_request(client: httpx.AsyncClient, url: str, body: dict, tally: Tally, max_tokens: int) -> None:
    started = time.perf_counter()
    first: float | None = None
    buffer = bytearray()
    scanned = 0  # buffer[:scanned] holds whole events already looked at for the first text
    try:
        async with client.stream("POST", url, json=body) as r:
            if r.status_code != 200:
                tally.error(f"HTTP {r.status_code}: {(await r.aread())[:200]!r}")
                return
            if not r.headers.get("content-type", "").startswith("text/event-stream"):
                tally.error(f"content-type {r.headers.get('content-type')}")
                return
            async for data in r.aiter_bytes():
                buffer += data
                while first is None and (end := buffer.find(b"\n\n", scanned)) >= 0:
                    event, scanned = bytes(buffer[scanned:end]), end + 2
                    if event.startswith(b"data: {") and b'"text": "' in event and b'"text": ""' not in event:
                        first = time.perf_counter()
    except httpx.HTTPError as exc:
        tally.error(f"{type(exc).__name__}: {exc}")
        return
    ended = time.perf_counter()
    _, tokens, problem = parse_sse(bytes(buffer))
    if problem:
        tally.error(problem)
        return
    if first is None:
        tally.error("no text in the stream")
        return
    tally.requests += 1
    tally.tokens += tokens
    tally.short += tokens < max_tokens
    tally.ttft.append(first - started)
    tally.latency.append(ended - started)


async def plain_request(client: httpx.AsyncClient, url: str, body: dict, tally: Tally, max_tokens: int) -> None:
    started = time.perf_counter()
    try:
        r = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        tally.error(f"{type(exc).__name__}: {exc}")
        return
    ended = time.perf_counter()
    if r.status_code != 200:
        tally.error(f"HTTP {r.status_code}: {r.text[:200]}")
        return
    try:
        answer = r.json()
        text, tokens = answer["choices"][0]["text"], answer["usage"]["completion_tokens"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        tally.error(f"bad body: {exc}")
        return
    if not text:
        tally.error("empty text")
        return
    tally.requests += 1
    tally.tokens += tokens
    tally.short += tokens < max_tokens
    tally.ttft.append(ended - started)  # not streamed: the first byte of text comes with the whole answer
    tally.latency.append(ended - started)


async def run_level(
    server: Server, model: str, clients: int, seconds: float, max_requests: int, settings: dict, seed_base: int
) -> tuple[Tally, dict[str, Any]]:
    streaming = server.name == "genlab"
    url = server.url + "/v1/completions"
    tally = Tally()
    issued = 0
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits) as client:
        start = time.perf_counter()
        deadline = start + seconds

        async def one_client(c: int) -> None:
            nonlocal issued
            i = 0
            while time.perf_counter() < deadline and issued < max_requests:
                issued += 1
                body = {
                    "model": model,
                    "prompt": PROMPTS[(c * 7 + i) % len(PROMPTS)],
                    "max_tokens": settings["max_tokens"],
                    "temperature": settings["temperature"],
                    "seed": seed_base + c * 100_000 + i,
                }
                if streaming:
                    body |= {"stream": True, "stream_options": {"include_usage": True}}
                    await streaming_request(client, url, body, tally, settings["max_tokens"])
                else:
                    await plain_request(client, url, body, tally, settings["max_tokens"])
                i += 1

        cpu_client, cpu_server, busy = time.process_time(), cpu_seconds(server.pid), machine_busy_seconds()
        await asyncio.gather(*(one_client(c) for c in range(clients)))
        wall = time.perf_counter() - start
        cpu_client, cpu_server = time.process_time() - cpu_client, cpu_seconds(server.pid) - cpu_server
        busy = machine_busy_seconds() - busy
    return tally, {
        "server": server.name,
        "clients": clients,
        "seconds_budget": seconds,
        "wall_seconds": wall,
        "requests": tally.requests,
        "errors": tally.errors,
        "short_completions": tally.short,
        "error_samples": tally.error_samples,
        "completion_tokens": tally.tokens,
        "tokens_per_second": tally.tokens / wall,
        "requests_per_second": tally.requests / wall,
        "ttft_ms": summary(tally.ttft),
        "latency_ms": summary(tally.latency),
        "server_cpu_seconds": cpu_server,
        "server_cpu_fraction": cpu_server / wall,
        "load_generator_cpu_seconds": cpu_client,
        "other_processes_cpu_fraction": max(0.0, busy - cpu_server - cpu_client) / wall,
    }


def summary(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50": None, "p95": None, "mean": None, "max": None}
    ms = sorted(s * 1000 for s in seconds)
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "mean": statistics.fmean(ms), "max": ms[-1]}


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    k = (len(sorted_values) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def batch_metrics(server: Server) -> tuple[float, float]:
    """genlab's /metrics: (sum, count) of its batch-size histogram (sequences per decoding step)."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    values = {}
    for name in ("sum", "count"):
        m = re.search(rf"^genlab_batch_size_{name}\{{[^}}]*\}} ([0-9.e+-]+)$", text, re.M)
        values[name] = float(m.group(1)) if m else 0.0
    return values["sum"], values["count"]


# ------------------------------------------------------------------ the run


def train_run(work: Path) -> tuple[Path, list[str]]:
    run = work / "char-gpt"
    if (run / "model" / "model.safetensors").is_file() and (run / "checkpoints").is_dir():
        return run, ["(reused)", str(run)]
    work.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "genlab",
        "train",
        "char-gpt-kjv",
        "--out",
        str(run),
        "train.max_iters=250",
        "train.eval_interval=250",
        "train.progress=false",
    ]
    print("training:", shlex.join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    return run, cmd


def check_prompts(run: Path, max_tokens: int) -> int:
    from tokenizers import Tokenizer

    context = json.loads((run / "model" / "config.json").read_text())["n_positions"]
    tokenizer = Tokenizer.from_file(str(run / "model" / "tokenizer.json"))
    longest = max(len(tokenizer.encode(p, add_special_tokens=False).ids) for p in PROMPTS)
    if longest + max_tokens > context:
        raise SystemExit(
            f"the longest prompt ({longest} tokens) + --max-tokens {max_tokens} exceeds the {context}-token context"
        )
    return context


def genlab_threads_probe(run: Path, env: dict[str, str]) -> int:
    """torch.get_num_threads() after genlab opens the run the way `genlab serve` does, in a process with the
    server's environment (the server itself has no endpoint that reports it)."""
    code = (
        "import sys, torch; from genlab.serve import open_runs; open_runs([sys.argv[1]]); "
        "print(torch.get_num_threads())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(run)], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


def machine_info() -> dict[str, Any]:
    import torch

    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_at_start": list(os.getloadavg()),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


async def benchmark(
    args: argparse.Namespace, servers: dict[str, Server], model: str, settings: dict, results: dict
) -> None:
    for name, server in servers.items():  # warm-up at the highest concurrency, not counted
        print(f"warm-up {name}: {max(args.levels)} clients, {args.warmup_seconds} s", flush=True)
        _, warm = await run_level(
            server, model, max(args.levels), args.warmup_seconds, args.max_requests, settings, seed_base=10**9
        )
        results["warmup"][name] = warm
        results["rss_mb"][name] = {"after_warmup": rss_mb(server.pid)}
    pooled: dict[tuple[str, int], tuple[Tally, list[dict]]] = {}
    for r in range(args.rounds):  # rounds and servers interleaved, so that load from elsewhere falls on both
        for c in args.levels:
            order = list(servers.items()) if r % 2 == 0 else list(servers.items())[::-1]
            for name, server in order:
                if name == "baseline" and c not in args.baseline_levels:
                    continue
                before = batch_metrics(server) if name == "genlab" else None
                tally, level = await run_level(
                    server, model, c, args.seconds, args.max_requests, settings, seed_base=r * 10**8 + c * 10**6
                )
                if before is not None:
                    after = batch_metrics(server)
                    level["decoding_steps"] = after[1] - before[1]
                    level["sequences_in_steps"] = after[0] - before[0]
                    level["mean_batch_per_step"] = (
                        level["sequences_in_steps"] / level["decoding_steps"] if level["decoding_steps"] else None
                    )
                level["round"], level["rss_mb"] = r + 1, rss_mb(server.pid)
                results["rounds"].append(level)
                total, rounds = pooled.setdefault((name, c), (Tally(), []))
                total.ttft += tally.ttft
                total.latency += tally.latency
                rounds.append(level)
                print(
                    f"round {r + 1} {name:>8} C={c:>2}: {level['requests']:>5} requests, "
                    f"{level['tokens_per_second']:7.1f} tok/s, TTFT p50 {fmt(level['ttft_ms']['p50'])} ms "
                    f"p95 {fmt(level['ttft_ms']['p95'])} ms, errors {level['errors']}, server CPU "
                    f"{level['server_cpu_fraction']:.2f}, others' CPU {level['other_processes_cpu_fraction']:.2f}, "
                    f"batch/step {fmt(level.get('mean_batch_per_step'), 2)}",
                    flush=True,
                )
    for (name, c), (total, rounds) in sorted(pooled.items(), key=lambda kv: (kv[0][0] != "genlab", kv[0][1])):
        wall = sum(lv["wall_seconds"] for lv in rounds)
        tokens = sum(lv["completion_tokens"] for lv in rounds)
        level = {
            "server": name,
            "clients": c,
            "rounds": len(rounds),
            "wall_seconds": wall,
            "requests": sum(lv["requests"] for lv in rounds),
            "errors": sum(lv["errors"] for lv in rounds),
            "short_completions": sum(lv["short_completions"] for lv in rounds),
            "error_samples": [e for lv in rounds for e in lv["error_samples"]][:5],
            "completion_tokens": tokens,
            "tokens_per_second": tokens / wall,
            "tokens_per_second_per_round": [lv["tokens_per_second"] for lv in rounds],
            "ttft_ms": summary(total.ttft),
            "latency_ms": summary(total.latency),
            "server_cpu_fraction": sum(lv["server_cpu_seconds"] for lv in rounds) / wall,
            "load_generator_cpu_fraction": sum(lv["load_generator_cpu_seconds"] for lv in rounds) / wall,
            "other_processes_cpu_fraction": sum(
                lv["other_processes_cpu_fraction"] * lv["wall_seconds"] for lv in rounds
            )
            / wall,
        }
        if name == "genlab":
            steps = sum(lv["decoding_steps"] for lv in rounds)
            level["mean_batch_per_step"] = sum(lv["sequences_in_steps"] for lv in rounds) / steps if steps else None
        results["levels"].append(level)
    for name, server in servers.items():
        results["rss_mb"][name]["after_all_levels"] = rss_mb(server.pid)
        results["rss_mb"][name]["ratio"] = (
            results["rss_mb"][name]["after_all_levels"] / results["rss_mb"][name]["after_warmup"]
        )


def fmt(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def find(levels: list[dict], server: str, clients: int) -> dict | None:
    return next((lv for lv in levels if lv["server"] == server and lv["clients"] == clients), None)


def ratios(results: dict) -> dict[str, float | None]:
    levels = results["levels"]
    g1, g8, b8 = find(levels, "genlab", 1), find(levels, "genlab", 8), find(levels, "baseline", 8)
    out = {
        "genlab_8_over_genlab_1": g8["tokens_per_second"] / g1["tokens_per_second"] if g1 and g8 else None,
        "genlab_8_over_baseline_8": g8["tokens_per_second"] / b8["tokens_per_second"] if b8 and g8 else None,
    }
    if g1 and g8:
        out["genlab_8_over_genlab_1_per_round"] = [
            a / b for a, b in zip(g8["tokens_per_second_per_round"], g1["tokens_per_second_per_round"])
        ]
    if b8 and g8:
        out["genlab_8_over_baseline_8_per_round"] = [
            a / b for a, b in zip(g8["tokens_per_second_per_round"], b8["tokens_per_second_per_round"])
        ]
    for name, rss in results["rss_mb"].items():
        out[f"{name}_rss_after_over_warmup"] = rss.get("ratio")
    return out


def write_markdown(results: dict, path: Path) -> None:
    s, r = results["settings"], results["ratios"]
    lines = [
        "# `genlab serve` under concurrent load",
        "",
        f"Produced by `{results['command']}` on {results['machine']['date']} "
        f"({results['machine']['cpu_count']} CPUs, {results['machine']['cpu_model']}; torch threads: genlab "
        f"{results['threads']['genlab']}, baseline {results['threads']['baseline']}).",
        "",
        f"Run: `{results['run']['path']}` ({results['run']['how']}). Every request: a KJV-like prompt of "
        f"≤ {s['longest_prompt_chars']} characters, {s['max_tokens']} new tokens, temperature "
        f"{s['temperature']}, no top-k/top-p, its own seed; {s['rounds']} round(s) of {s['seconds']} s per "
        f"level (at most {s['max_requests']} requests each; figures pool the rounds), after a "
        f"{s['warmup_seconds']} s warm-up at "
        f"{max(s['levels'])} clients. genlab streams (TTFT = first text chunk); the baseline "
        "(`transformers` `generate`, one request at a time) does not (TTFT = full latency).",
        "",
        "| server | clients | requests | TTFT p50 ms | TTFT p95 ms | latency p50 ms | aggregate tok/s "
        "| tok/s per round | errors | server CPU | others' CPU | batch/step |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lv in sorted(results["levels"], key=lambda lv: (lv["server"] != "genlab", lv["clients"])):
        lines.append(
            f"| {lv['server']} | {lv['clients']} | {lv['requests']} | {fmt(lv['ttft_ms']['p50'])} | "
            f"{fmt(lv['ttft_ms']['p95'])} | {fmt(lv['latency_ms']['p50'])} | "
            f"{lv['tokens_per_second']:.0f} | "
            f"{', '.join(f'{v:.0f}' for v in lv['tokens_per_second_per_round'])} | {lv['errors']} | "
            f"{lv['server_cpu_fraction']:.2f} | {lv['other_processes_cpu_fraction']:.2f} | "
            f"{fmt(lv.get('mean_batch_per_step'), 2)} |"
        )

    def verdict(value: float | None, target: float, above: bool = True) -> str:
        if value is None:
            return "not measured"
        ok = value >= target if above else value <= target
        return f"**{value:.2f}** (target {'≥' if above else '≤'} {target}: {'met' if ok else 'NOT met'})"

    def per_round(key: str) -> str:
        values = r.get(key + "_per_round")
        return f"; per round {', '.join(f'{v:.2f}' for v in values)}" if values else ""

    lines += [
        "",
        "| ratio | value |",
        "|---|---|",
        f"| genlab tok/s at 8 clients ÷ genlab at 1 client | "
        f"{verdict(r['genlab_8_over_genlab_1'], TARGETS['genlab_8_over_genlab_1'])}"
        f"{per_round('genlab_8_over_genlab_1')} |",
        f"| genlab tok/s at 8 clients ÷ baseline at 8 clients | "
        f"{verdict(r['genlab_8_over_baseline_8'], TARGETS['genlab_8_over_baseline_8'])}"
        f"{per_round('genlab_8_over_baseline_8')} |",
    ]
    for name, rss in results["rss_mb"].items():
        lines.append(
            f"| {name} RSS after all levels ÷ after warm-up ({rss['after_all_levels']:.0f} / "
            f"{rss['after_warmup']:.0f} MB) | "
            f"{verdict(rss['ratio'], TARGETS['rss_after_over_warmup_max'], above=False)} |"
        )
    lines += [
        "",
        "Server CPU = the server process's CPU seconds ÷ the level's wall time (the machine has "
        f"{results['machine']['cpu_count']} CPUs, shared with the load generator); others' CPU = the "
        "machine's busy CPU seconds (/proc/stat) less the server's and the load generator's, ÷ wall time: "
        "load from other processes during the level; batch/step = genlab's mean sequences per decoding "
        "step (its /metrics). Figures: serve_benchmark.json; plot: serve_benchmark.png.",
        "",
    ]
    path.write_text("\n".join(lines))


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, label, marker in (
        ("genlab", "genlab serve (continuous batching, streaming)", "o"),
        ("baseline", "transformers generate, one request at a time", "s"),
    ):
        points = sorted((lv["clients"], lv["tokens_per_second"]) for lv in results["levels"] if lv["server"] == name)
        if points:
            ax.plot(*zip(*points), marker=marker, label=label)
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("aggregate completion tokens/s")
    ax.set_xscale("log", base=2)
    ax.set_xticks(results["settings"]["levels"], [str(c) for c in results["settings"]["levels"]])
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(
        f"char GPT (4×128, ctx 64), {results['settings']['max_tokens']} tokens/request, "
        f"{results['machine']['cpu_count']} CPUs",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def levels_arg(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="an existing char-gpt-kjv run (default: train one into --work)")
    parser.add_argument("--work", default="/tmp/genlab-serve-benchmark", help="folder for a trained run and logs")
    parser.add_argument("--levels", type=levels_arg, default=[1, 4, 8, 16], help="concurrency levels (1,4,8,16)")
    parser.add_argument("--baseline-levels", type=levels_arg, help="the baseline's levels (default: --levels)")
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per level (default 20)")
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the levels, interleaved (default 2)")
    parser.add_argument("--max-requests", type=int, default=5000, help="requests per level at most")
    parser.add_argument("--max-tokens", type=int, default=48, help="new tokens per request (prompt + these ≤ 64)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of both servers (OMP_NUM_THREADS); 0: each server's default",
    )
    parser.add_argument("--max-batch", type=int, help="genlab serve --max-batch (default: genlab's)")
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    args.baseline_levels = args.baseline_levels or args.levels
    command = shlex.join(["python", "benchmarks/serve_benchmark.py", *sys.argv[1:]])

    if args.run:
        run, how = Path(args.run).resolve(), "given with --run"
    else:
        run, train_cmd = train_run(Path(args.work))
        how = "reused from --work" if train_cmd[0] == "(reused)" else "trained by: " + shlex.join(train_cmd)
    if not (run / "model" / "config.json").is_file():
        raise SystemExit(f"{run} has no model/ export (a genlab LM run has one)")
    context = check_prompts(run, args.max_tokens)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "GENLAB_THREADS", "MKL_NUM_THREADS")}
    if args.threads:
        env |= {"OMP_NUM_THREADS": str(args.threads), "GENLAB_THREADS": str(args.threads)}
    env["PYTHONUNBUFFERED"] = "1"
    settings = {
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "top_k": None,
        "top_p": 1.0,
        "levels": args.levels,
        "baseline_levels": args.baseline_levels,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup_seconds,
        "rounds": args.rounds,
        "max_requests": args.max_requests,
        "threads_setting": args.threads or "each server's default",
        "context": context,
        "longest_prompt_chars": max(map(len, PROMPTS)),
        "prompts": PROMPTS,
        "genlab_max_batch": args.max_batch or "genlab default",
    }
    results: dict[str, Any] = {
        "command": command,
        "machine": machine_info(),
        "settings": settings,
        "run": {"path": str(run), "how": how, "model_name": run.name},
        "threads": {},
        "servers": {},
        "warmup": {},
        "rss_mb": {},
        "levels": [],
        "rounds": [],
    }

    genlab_cmd = [sys.executable, "-m", "genlab", "serve", str(run), "--port", str(free_port())]
    if args.max_batch:
        genlab_cmd += ["--max-batch", str(args.max_batch)]
    baseline_cmd = [sys.executable, str(BASELINE), str(run), "--port", str(free_port())]
    if args.threads:
        baseline_cmd += ["--threads", str(args.threads)]
    servers: dict[str, Server] = {}
    previous_term = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops the servers
    try:
        results["threads"]["genlab"] = genlab_threads_probe(run, env)
        for name, cmd in (("genlab", genlab_cmd), ("baseline", baseline_cmd)):
            servers[name] = Server(name, cmd, int(cmd[cmd.index("--port") + 1]), env, work / f"{name}.log")
        for name, server in servers.items():
            health = server.wait_healthy(300)
            results["servers"][name] = {
                "command": shlex.join(server.cmd),
                "pid": server.pid,
                "health": health,
                "rss_mb_at_start": rss_mb(server.pid),
                "os_threads": os_threads(server.pid),
            }
            print(f"{name} up at {server.url} (pid {server.pid})", flush=True)
        results["threads"]["baseline"] = results["servers"]["baseline"]["health"]["torch_threads"]
        asyncio.run(benchmark(args, servers, run.name, settings, results))
    finally:
        for server in servers.values():
            server.stop()
        signal.signal(signal.SIGTERM, previous_term)
    results["ratios"] = ratios(results)
    results["targets"] = TARGETS
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    (out_dir / "serve_benchmark.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, out_dir / "serve_benchmark.md")
    plot(results, out_dir / "serve_benchmark.png")
    print((out_dir / "serve_benchmark.md").read_text())


if __name__ == "__main__":
    main()
