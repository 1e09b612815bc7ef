"""How many threads PyTorch uses on the CPU: the cores that other work leaves free, not all of them.

On a machine shared with one other busy process, two OpenMP threads on two cores ran the essay GAN's step
at 7 steps/s where one thread ran 21: every parallel region waits for the thread whose core is taken
(benchmarks/threads_benchmark.py, docs/training.md). So unless the user has chosen (OMP_NUM_THREADS or
GENLAB_THREADS), genlab counts the processes that are running right now and leaves their cores to them.

The thread count changes float summation order, hence a run's exact weights: a run keeps the count it
started with (its checkpoints record it, and a resumed session uses it again), and GENLAB_THREADS=N pins it
for runs that must match bit for bit across differently loaded moments.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from genlab.errors import GenlabError
from genlab.io.validate import environ

SAMPLES, INTERVAL_S = 5, 0.02  # the run queue changes by the millisecond: take the median of a few looks
MAX_THREADS = 4096  # more would be a typo: torch takes the count as a C int


def usable_cores() -> int:
    return len(os.sched_getaffinity(0))


def other_running_processes() -> int:
    """Runnable tasks on the machine besides this one, from the 4th field of /proc/loadavg ("2/87")."""
    counts = []
    for i in range(SAMPLES):
        try:
            with open("/proc/loadavg") as fh:
                counts.append(int(fh.read().split()[3].split("/")[0]) - 1)  # minus ourselves, reading it
        except (OSError, IndexError, ValueError):
            return 0  # not Linux: assume an idle machine, as torch does
        if i + 1 < SAMPLES:
            time.sleep(INTERVAL_S)
    return max(0, round(statistics.median(counts)))


def default_threads() -> int:
    return max(1, usable_cores() - other_running_processes())


def user_pinned() -> bool:
    return (
        environ("GENLAB_THREADS") is not None or environ("OMP_NUM_THREADS") is not None
    )  # torchrun sets OMP: 1 a process


def configure_threads(recorded: int | None = None) -> int:
    """Set torch's intra-op threads: the user's choice, else the count a resumed run `recorded`, else the
    cores free right now. Returns the count."""
    chosen = environ("GENLAB_THREADS")
    if chosen is not None:
        if not chosen.isdigit() or not 1 <= int(chosen) <= MAX_THREADS:
            raise GenlabError(f"GENLAB_THREADS must be a positive integer up to {MAX_THREADS}, got {chosen!r}")
        torch.set_num_threads(int(chosen))
    elif not user_pinned():
        torch.set_num_threads(recorded or default_threads())
    return torch.get_num_threads()


@contextmanager
def threads(count: int) -> Iterator[None]:
    """Run the block on `count` intra-op threads, then restore the count: for work whose exact result must not
    follow the machine's load at that moment (a reference network trained once and cached)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
