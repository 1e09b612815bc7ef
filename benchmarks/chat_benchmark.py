"""The chat model's benchmarks: quality per instruction kind beside single-task runs, and chat streaming speed.

    python benchmarks/chat_benchmark.py quality runs/chat runs/chat-translate runs/chat-category
    python benchmarks/chat_benchmark.py decoding runs/chat --penalties 0 0.1 0.2 0.3 0.5 0.8
    python benchmarks/chat_benchmark.py serve runs/chat --seconds 20 --rounds 3

`quality` runs `genlab eval` on each run that has no `chat` section yet (the run's decoding: greedy answers, with
its frequency penalty, to the held-out
conversations of every kind the run was trained on, genlab/tasks/chat/scoring.py) and writes a table of every
kind's metrics per run, with each run's training CPU seconds, to benchmarks/results/chat/quality.{json,md}.
The first run is the chat model; the others are single-task runs of the same size (the same recipe with
every other kind's count set to 0, and fewer steps: they see as many examples of their kind as the chat run).

`decoding` answers the validation and the test conversations greedily under each frequency penalty (the
recipe's `decoding.frequency_penalty` is the smallest that ends every validation answer) and writes each
kind's figure and end-of-turn share to benchmarks/results/chat/decoding.{json,md}.

`serve` starts `genlab serve RUN` (one torch thread) and streams the same conversations through
/v1/chat/completions and, rendered with the chat template, through /v1/completions: `--clients` concurrent
clients for `--seconds` per endpoint, the endpoints interleaved over `--rounds` rounds. Decoding is greedy,
so both endpoints generate the same tokens; aggregate tokens/s = completion tokens (from the usage chunk) /
wall time. Writes benchmarks/results/chat/serve.{json,md} with `uptime`'s load average before and after.
Run it alone, with nothing else busy on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("CHAT_BENCHMARK_OUT", ROOT / "benchmarks" / "results" / "chat"))
sys.path.insert(0, str(ROOT))

from genlab.io.chat_template import render  # noqa: E402

# Instructions whose greedy answers are long (verses, fortunes): the benchmark measures decoding, not only the
# per-request cost that one-word answers (a category) would.
CONVERSATIONS = [
    [{"role": "user", "content": "Translate into Spanish: In the beginning, God created the heavens and the earth."}],
    [{"role": "user", "content": "Say this in modern English: And God said, Let there be light: and there was light."}],
    [{"role": "user", "content": "Give me a fortune about computers"}],
    [{"role": "user", "content": "Rewrite in modern English: These are the families of the sons of Noah."}],
    [{"role": "user", "content": "How do you say this in Spanish? The earth was formless and empty."}],
]


def load_average() -> str:
    """`uptime`'s 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def evaluated(run: Path) -> dict[str, Any]:
    report = json.loads((run / "report.json").read_text())
    if "chat" not in report:
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "-m", "genlab", "eval", str(run)], check=True, env=env, stdout=subprocess.DEVNULL
        )
        report = json.loads((run / "report.json").read_text())
    return report


def quality(runs: list[Path]) -> None:
    rows = []
    for run in runs:
        report = evaluated(run)
        chat, cost = report["chat"], report["cost"]
        kinds = {k: {m: v for m, v in s.items() if m not in ("shown", "signature")} for k, s in chat["kinds"].items()}
        rows.append(
            {
                "run": run.name,
                "steps": cost["steps"],
                "cpu_seconds": cost["cpu_seconds"],
                "train_flops": cost["train_flops"],
                "ended_rate": chat["ended_rate"],
                "decoding": chat.get("decoding"),
                "kinds": kinds,
                "signature": {k: s.get("signature") for k, s in chat["kinds"].items() if "signature" in s},
            }
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "quality.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    lines = [
        "| run | steps | train CPU s | kind | metric | language / format | ended with <\\|end\\|> |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for kind, m in row["kinds"].items():
            metric = (
                f"BLEU {m['bleu']:.1f}, chrF {m['chrf']:.1f}"
                if "bleu" in m
                else f"macro-F1 {m['macro_f1']:.3f}, acc {m['accuracy']:.3f}"
                if "macro_f1" in m
                else "—"
            )
            shares = ", ".join(
                f"{k.removesuffix('_rate')} {m[k]:.0%}" for k in ("language_rate", "format_rate") if k in m
            )
            lines.append(
                f"| {row['run']} | {row['steps']} | {row['cpu_seconds']:.0f} | {kind} | {metric} | {shares or '—'} "
                f"| {m['ended_rate']:.0%} |"
            )
    (OUT / "quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def decoding(run: Path, penalties: list[float]) -> None:
    import genlab
    from genlab.tasks.chat.recipe import ChatDecodingConfig
    from genlab.tasks.chat.scoring import headline

    handle = genlab.load(run)
    rows = []
    for split in ("validation", "test"):
        for penalty in penalties:
            kinds, answers = handle.answer_kinds(split, ChatDecodingConfig(frequency_penalty=penalty))
            figures = {
                k: {"metric": headline(m), "value": m[headline(m)], "ended_rate": m["ended_rate"]}
                for k, m in kinds.items()
            }
            ended = sum(a["ended"] for a in answers) / len(answers)
            rows.append({"split": split, "frequency_penalty": penalty, "ended_rate": ended, "kinds": figures})
            print(split, penalty, f"ended {ended:.1%}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "decoding.json").write_text(json.dumps({"run": run.name, "rows": rows}, indent=2) + "\n")
    kinds = list(rows[0]["kinds"])
    lines = [
        "| split | frequency penalty | ended with <\\|end\\|> | " + " | ".join(kinds) + " |",
        "|---|---|---|" + "---|" * len(kinds),
    ]
    for row in rows:
        cells = [
            f"{k['metric'].removesuffix('_rate')} {k['value']:.3g}, ended {k['ended_rate']:.0%}"
            for k in row["kinds"].values()
        ]
        lines.append(
            f"| {row['split']} | {row['frequency_penalty']} | {row['ended_rate']:.1%} | " + " | ".join(cells) + " |"
        )
    (OUT / "decoding.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def stream_tokens(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> int:
    """One streamed request; its completion tokens from the usage chunk."""
    tokens = None
    async with client.stream("POST", path, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                usage = json.loads(line[6:]).get("usage")
                tokens = usage["completion_tokens"] if usage else tokens
    if tokens is None:
        raise RuntimeError(f"{path}: no usage chunk")
    return tokens


async def level(url: str, model: str, endpoint: str, clients: int, seconds: float, max_tokens: int) -> dict[str, float]:
    """`clients` clients back to back on one endpoint for `seconds`: tokens/s and requests."""
    counts = {"tokens": 0, "requests": 0}
    deadline = time.perf_counter() + seconds

    async def client_loop(c: int, client: httpx.AsyncClient) -> None:
        i = c
        while time.perf_counter() < deadline:
            messages = CONVERSATIONS[i % len(CONVERSATIONS)]
            common = {"model": model, "max_tokens": max_tokens, "temperature": 0.0, "seed": i, "stream": True}
            common["stream_options"] = {"include_usage": True}
            if endpoint == "chat":
                body, path = common | {"messages": messages}, "/v1/chat/completions"
            else:
                body, path = common | {"prompt": render(messages)}, "/v1/completions"
            # Awaited first, then added: `counts["tokens"] += await ...` reads the count before the await and
            # writes it back after, dropping what the other clients added meanwhile.
            tokens = await stream_tokens(client, path, body)
            counts["tokens"] += tokens
            counts["requests"] += 1
            i += clients

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await asyncio.gather(*(client_loop(c, client) for c in range(clients)))
    wall = time.perf_counter() - started
    return {
        "tokens": counts["tokens"],
        "requests": counts["requests"],
        "seconds": wall,
        "tokens_per_s": counts["tokens"] / wall,
    }


def serve(run: Path, clients: int, seconds: float, rounds: int, max_tokens: int) -> None:
    port = free_port()
    env = os.environ | {"PYTHONPATH": str(ROOT), "GENLAB_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "genlab", "serve", str(run), "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        before = load_average()
        asyncio.run(level(url, run.name, "chat", clients, 3, max_tokens))  # warm-up, not counted
        results: dict[str, list[dict[str, float]]] = {"chat": [], "completions": []}
        for r in range(rounds):
            order = ("chat", "completions") if r % 2 == 0 else ("completions", "chat")
            for endpoint in order:
                results[endpoint].append(asyncio.run(level(url, run.name, endpoint, clients, seconds, max_tokens)))
        after = load_average()
    finally:
        server.terminate()
        server.wait(timeout=30)
    pooled = {e: sum(x["tokens"] for x in rs) / sum(x["seconds"] for x in rs) for e, rs in results.items()}
    summary = {
        "run": str(run),
        "clients": clients,
        "seconds_per_level": seconds,
        "rounds": rounds,
        "max_tokens": max_tokens,
        "load_average_before": before,
        "load_average_after": after,
        "levels": results,
        "tokens_per_s": pooled,
        "chat_over_completions": pooled["chat"] / pooled["completions"],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "serve.json").write_text(json.dumps(summary, indent=2) + "\n")
    per_round = {e: ", ".join(f"{x['tokens_per_s']:.0f}" for x in rs) for e, rs in results.items()}
    lines = [
        f"{clients} streaming clients, {seconds:.0f} s per endpoint per round, {rounds} rounds; "
        f"load average {before} -> {after}",
        "",
        "| endpoint | tokens/s (pooled) | per round |",
        "|---|---|---|",
        *(f"| /v1/{'chat/' if e == 'chat' else ''}completions | {pooled[e]:.0f} | {per_round[e]} |" for e in results),
        "",
        f"chat / completions = {summary['chat_over_completions']:.3f}",
    ]
    (OUT / "serve.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    q = sub.add_parser("quality")
    q.add_argument("runs", nargs="+", type=Path)
    d = sub.add_parser("decoding")
    d.add_argument("run", type=Path)
    d.add_argument("--penalties", nargs="+", type=float, default=[0.0, 0.1, 0.2, 0.3, 0.5, 0.8])
    s = sub.add_parser("serve")
    s.add_argument("run", type=Path)
    s.add_argument("--clients", type=int, default=8)
    s.add_argument("--seconds", type=float, default=20)
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    if args.what == "quality":
        quality(args.runs)
    elif args.what == "decoding":
        decoding(args.run, args.penalties)
    else:
        serve(args.run, args.clients, args.seconds, args.rounds, args.max_tokens)


if __name__ == "__main__":
    main()
