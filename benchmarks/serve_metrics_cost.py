"""What `/metrics` over several workers costs a decoding step: a step records its tokens (a counter) and its
batch size (a histogram). Timed in a process with prometheus_client's in-memory values (`--workers 1`) and in
one with its multiprocess mode (`--workers N`, values in memory-mapped files), each in a fresh interpreter
since the mode is chosen when prometheus_client is imported.

    python benchmarks/serve_metrics_cost.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import timeit

from genlab.serve.metrics import MULTIPROCESS

STEPS = 200_000


def time_a_step() -> float:
    """Seconds per step's metric updates in this process (best of 3 runs of STEPS)."""
    from genlab.serve.metrics import Metrics

    metrics = Metrics()
    tokens, batch = metrics.tokens.labels("lm"), metrics.batch_size.labels("lm")

    def step() -> None:
        tokens.inc(8)
        batch.observe(8)

    return min(timeit.repeat(step, number=STEPS, repeat=3)) / STEPS


def main() -> None:
    if len(sys.argv) > 1:  # the child: one mode, chosen by the environment it was given
        print(time_a_step())
        return
    with tempfile.TemporaryDirectory() as folder:
        for mode, extra in (("one process", {}), ("multiprocess mode", {MULTIPROCESS: folder})):
            env = {k: v for k, v in os.environ.items() if k != MULTIPROCESS} | extra
            out = subprocess.run([sys.executable, __file__, "child"], env=env, capture_output=True, text=True)
            seconds = float(out.stdout.strip().splitlines()[-1])
            print(f"{mode}: {seconds * 1e6:.2f} µs of metric updates per decoding step")


if __name__ == "__main__":
    main()
