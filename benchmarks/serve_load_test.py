"""The load test a user would run, as one command: `genlab serve` with a text, an image and an audio model, driven
by locust (benchmarks/serve_locustfile.py: the mix of requests it sends is described there) for `--minutes`,
with the RSS of every server process sampled every 10 s.

1. Runs: the char GPT of serve_benchmark.py (trained into --work if missing), a conditional MLP GAN
   (conditional-mlp-mnist, `--image-epochs` epochs: the recipe's network, briefly trained) and a spoken-digit GAN
   (spoken-digits-gan's network, one epoch on a tiny synthesized set). Throughput does not depend on how
   well they are trained; the networks are the recipes'.
2. `genlab serve` on the three with `--workers`, `--max-batch` and `--max-queue` (small by default, so that the
   users overload it and some requests are answered 429).
3. `locust --headless -u USERS -r RATE -t MINUTES` against it; RSS per process every 10 s.
4. Writes benchmarks/results/serve/NAME.{json,md} (NAME: `--name`, default load_test): locust's summary
   (p50/p95 latency per endpoint, TTFT, tokens/s, errors, 429s) and RSS over time (first sample after
   the first minute, as the baseline: ≤ 10 % growth is the target).

    python benchmarks/serve_load_test.py --minutes 2                      # ~3 minutes
    python benchmarks/serve_load_test.py --minutes 10 --name load_soak    # the soak
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_benchmark import DEFAULT_OUT, ROOT, Server, free_port, machine_info, train_run  # noqa: E402
from serve_scale_benchmark import tree  # noqa: E402

from genlab import api  # noqa: E402
from genlab.tasks.audio.tiny import write_tiny_digits  # noqa: E402

LOCUSTFILE = Path(__file__).resolve().parent / "serve_locustfile.py"
RSS_GROWTH_MAX = 1.10


def runs(work: Path, image_epochs: int) -> list[Path]:
    text = train_run(work)[0]
    cond, digits = work / "cond", work / "digits"
    if not (cond / "report.json").is_file():
        api.fit("conditional-mlp-mnist", cond, [f"train.epochs={image_epochs}", "train.progress=false"])
    if not (digits / "report.json").is_file():
        data = write_tiny_digits(work / "tiny-digits")
        settings = [f"data.path={data}", "data.batch_size=5", "train.epochs=1", "train.progress=false"]
        api.fit("spoken-digits-gan", digits, settings)  # the recipe's network, 3 steps on 15 clips
    return [text, cond, digits]


def rss_by_process(pid: int) -> dict[str, float]:
    out = {}
    for p in tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        out[str(p)] = round(kb / 1024, 1)
    return out


def load(args: argparse.Namespace, server: Server, summary_path: Path) -> tuple[list[dict], subprocess.Popen]:
    """Run locust against the server; sample RSS every 10 s meanwhile."""
    seconds = int(args.minutes * 60)
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(args.users)]
    cmd += ["-r", str(args.rate), "-t", f"{seconds}s", "--host", server.url, "--only-summary", "--stop-timeout", "30"]
    env = {**os.environ, "GENLAB_LOAD_SUMMARY": str(summary_path)}
    locust = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples, started = [], time.monotonic()
    while locust.poll() is None:
        samples.append({"seconds": round(time.monotonic() - started, 1), "rss_mb": rss_by_process(server.pid)})
        time.sleep(10)
    return samples, locust


def rss_growth(samples: list[dict]) -> dict[str, Any]:
    """Total RSS of the serving processes: the first sample after a minute (warm) against the last one."""
    warm = next((s for s in samples if s["seconds"] >= 60), samples[0])
    first, last = sum(warm["rss_mb"].values()), sum(samples[-1]["rss_mb"].values())
    return {"warm_at_seconds": warm["seconds"], "warm_mb": first, "last_mb": last, "ratio": last / first}


def plot_rss(samples: list[dict], path: Path) -> None:
    """RSS of each server process over the test (a process that was replaced ends its line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for pid in sorted({pid for s in samples for pid in s["rss_mb"]}, key=int):
        points = [(s["seconds"] / 60, s["rss_mb"][pid]) for s in samples if pid in s["rss_mb"]]
        ax.plot(*zip(*points), marker=".", label=f"pid {pid}")
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title("genlab serve under locust: RSS of the supervisor and each worker", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_markdown(results: dict, path: Path) -> None:
    s, m, g = results["summary"], results["machine"], results["rss_growth"]
    verdict = "met" if g["ratio"] <= RSS_GROWTH_MAX else "NOT met"
    lines = [
        f"# `genlab serve` load test ({results['minutes']} minutes, locust)",
        "",
        f"Produced by `{results['command']}` on {m['date']} ({m['cpu_count']} CPUs); load average at start "
        f"{', '.join(f'{v:.2f}' for v in m['load_average_at_start'])}, at end "
        f"{', '.join(f'{v:.2f}' for v in m['load_average_at_end'])}. Server: `{results['server']}`. "
        f"Load: `{results['locust']}` (the mix: benchmarks/serve_locustfile.py).",
        "",
        "| request | count | failures | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in s["rows"].items():
        lines.append(
            f"| {name} | {row['requests']} | {row['failures']} | {row['p50_ms']:.0f} | {row['p95_ms']:.0f} | "
            f"{row['max_ms']:.0f} |"
        )
    lines += [
        "",
        f"- completion tokens/s: **{s['completion_tokens_per_second']:.0f}** ({s['completion_tokens']} tokens in "
        f"{s['seconds']:.0f} s)",
        f"- errors (failures other than 429): **{s['errors']}**; answered 429 (overload): **{s['rate_limited_429']}**",
        f"- RSS of the server's processes: {g['warm_mb']:.0f} MB at {g['warm_at_seconds']:.0f} s → {g['last_mb']:.0f} "
        f"MB at the end: ×{g['ratio']:.3f} (target ≤ {RSS_GROWTH_MAX}: {verdict})",
        f"- RSS per process at the end (MB): {results['rss'][-1]['rss_mb']}",
    ]
    if s["failures"]:
        lines += ["", "Failures:", ""] + [f"- {f['name']}: {f['error']} (×{f['occurrences']})" for f in s["failures"]]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/genlab-serve-benchmark")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--rate", type=float, default=8.0, help="users started per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-queue", type=int, default=8)
    parser.add_argument("--image-epochs", type=int, default=2)
    parser.add_argument("--name", default="load_test")
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    work = Path(args.work)
    served = runs(work, args.image_epochs)
    port = free_port()
    cmd = [sys.executable, "-m", "genlab", "serve", *map(str, served), "--port", str(port)]
    cmd += ["--workers", str(args.workers), "--max-batch", str(args.max_batch), "--max-queue", str(args.max_queue)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    results: dict[str, Any] = {"command": shlex.join(["python", "benchmarks/serve_load_test.py", *sys.argv[1:]])}
    results |= {"machine": machine_info(), "minutes": args.minutes, "server": shlex.join(["genlab", *cmd[3:]])}
    results["locust"] = f"locust --headless -u {args.users} -r {args.rate:g} -t {int(args.minutes * 60)}s"
    summary_path = work / f"{args.name}-locust.json"
    server = Server("genlab", cmd, port, env, work / f"{args.name}-server.log")
    try:
        server.wait_healthy(300)
        time.sleep(5)  # every worker up (health answers from the first)
        results["rss"], locust = load(args, server, summary_path)
        results["locust_output_tail"] = locust.stdout.read()[-4000:]
    finally:
        server.stop()
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["summary"] = json.loads(summary_path.read_text())
    results["rss_growth"] = rss_growth(results["rss"])
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, out / f"{args.name}.md")
    plot_rss(results["rss"], out / f"{args.name}.png")
    print((out / f"{args.name}.md").read_text())


if __name__ == "__main__":
    main()
