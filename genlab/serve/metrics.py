"""Prometheus metrics of one server (its own registry, so two apps in one process do not mix).

With `genlab serve --workers N`, /metrics gives the totals over every worker, whichever worker answers the
scrape: prometheus_client's multiprocess mode. The supervisor names a fresh folder in PROMETHEUS_MULTIPROC_DIR
before it starts the workers (`shared_metrics`); each worker's prometheus_client, imported after that, keeps its
values in memory-mapped files there, and a scrape sums the files (`Metrics.exposition`). Counters and histograms
of a worker that died or was replaced stay in the totals (a Prometheus counter never goes down); its gauges
(`genlab_queue_depth`: the sum over live workers) leave with it (`forget_process`).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's switch, read once when it is imported

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "genlab_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "genlab_request_seconds",
            "Time from request to last byte, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "genlab_time_to_first_token_seconds",
            "Completions: request to first text",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("genlab_tokens_generated", "Tokens generated", ["model"], registry=r)
        self.images = Counter("genlab_images_generated", "Images generated", ["model"], registry=r)
        self.clips = Counter("genlab_audio_clips_generated", "Audio clips generated", ["model"], registry=r)
        self.classified = Counter("genlab_texts_classified", "Texts classified", ["model"], registry=r)
        self.translated = Counter("genlab_texts_translated", "Texts translated", ["model"], registry=r)
        self.queue_depth = Gauge(
            "genlab_queue_depth", "Requests waiting for a slot", ["model"], registry=r, multiprocess_mode="livesum"
        )
        self.batch_size = Histogram(
            "genlab_batch_size",
            "Sequences (images, texts) per model step",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )

    def exposition(self) -> bytes:
        """The Prometheus text of this server: of every worker in multiprocess mode, else of this app."""
        folder = os.environ.get(MULTIPROCESS)
        if not folder:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, folder)
        return generate_latest(registry)


@contextmanager
def shared_metrics(folder: Path) -> Iterator[None]:
    """Processes started inside this block keep their metrics in `folder` (new and empty), which a scrape sums."""
    folder.mkdir()
    before = os.environ.get(MULTIPROCESS)
    os.environ[MULTIPROCESS] = str(folder)
    try:
        yield
    finally:
        if before is None:
            del os.environ[MULTIPROCESS]
        else:
            os.environ[MULTIPROCESS] = before


def forget_process(pid: int) -> None:
    """A worker that is gone leaves the live gauges (multiprocess mode; nothing otherwise)."""
    if folder := os.environ.get(MULTIPROCESS):
        multiprocess.mark_process_dead(pid, folder)


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux's /proc; elsewhere the peak)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
