"""Threads on a shared machine: the essay GAN's training step with 1 thread, all cores, and genlab's
default (the cores other running processes leave free), on a quiet machine and beside one busy process.

Each measurement is a fresh process timing steps for a few seconds; scenarios and thread counts are
interleaved over rounds, and the median steps/s of the rounds is reported.

    python benchmarks/threads_benchmark.py                 # 3 rounds of 4 s per measurement
    python benchmarks/threads_benchmark.py --quick --out /tmp/t.json   # smoke mode: 1 round of 0.5 s
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

STEP = r"""
import sys, time, torch
from genlab.core.threads import configure_threads
from genlab.models.gan import GANConfig, build_gan
from genlab.tasks.gan.process import discriminator_loss, generator_loss
threads = configure_threads()
torch.manual_seed(0)
g, d = build_gan(GANConfig())
opt_g, opt_d = torch.optim.Adam(g.parameters(), 2e-4), torch.optim.Adam(d.parameters(), 2e-4)
real = torch.rand(128, 1, 28, 28)
def step():
    fake = g(torch.randn(128, 100))
    real_logits, fake_logits = d(torch.cat([real, fake.detach()])).chunk(2)
    opt_d.zero_grad(); discriminator_loss(real_logits, fake_logits).backward(); opt_d.step()
    opt_g.zero_grad(); generator_loss(d(fake)).backward(); opt_g.step()
for _ in range(3):
    step()
n, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[1]):
    step(); n += 1
print(n / (time.perf_counter() - start), threads)
"""
BUSY = "while True: pass"
SETTINGS = {
    "1 thread": {"GENLAB_THREADS": "1"},
    "all cores": {"GENLAB_THREADS": str(len(os.sched_getaffinity(0)))},
    "genlab default": {},
}


def measure(seconds: float, env_extra: dict[str, str]) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("GENLAB_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", STEP, str(seconds)], env={**env, **env_extra}, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke mode: one round of 0.5 s")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "threads_benchmark.json"))
    args = parser.parse_args()
    rounds, seconds = (1, 0.5) if args.quick else (3, 4.0)
    results: dict[str, dict[str, list]] = {}
    for _ in range(rounds):
        for scenario in ("quiet", "one busy process"):
            neighbour = subprocess.Popen([sys.executable, "-c", BUSY]) if scenario != "quiet" else None
            time.sleep(0.3 if neighbour else 0)
            try:
                for name, env in SETTINGS.items():
                    rate, threads = measure(seconds, env)
                    entry = results.setdefault(scenario, {}).setdefault(name, {"steps_per_s": [], "threads": []})
                    entry["steps_per_s"].append(round(rate, 2))
                    entry["threads"].append(threads)
            finally:
                if neighbour:
                    neighbour.kill()
                    neighbour.wait()
    summary = {
        scenario: {
            name: {"median_steps_per_s": statistics.median(e["steps_per_s"]), **e} for name, e in by_setting.items()
        }
        for scenario, by_setting in results.items()
    }
    report = {
        "step": "essay MLP GAN, batch 128, D + G step",
        "cores": len(os.sched_getaffinity(0)),
        "rounds": rounds,
        "seconds_per_measurement": seconds,
        "results": summary,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for scenario, by_setting in summary.items():
        print(
            scenario
            + ": "
            + ", ".join(
                f"{name} {e['median_steps_per_s']:.1f} steps/s (threads {e['threads']})"
                for name, e in by_setting.items()
            )
        )


if __name__ == "__main__":
    main()
