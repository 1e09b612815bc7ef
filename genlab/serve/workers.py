"""The server's model workers: one thread per served model, so the event loop never waits on torch.

- `TextWorker` runs continuous batching (genlab.models.batching): requests join and leave the
  shared decoding step as they come and go, and each sequence's text is sent to its request as it
  grows.
- `BatchWorker` runs whatever requests are waiting as one call (images: one forward pass of the
  generator; classifications: one padded batch).

Both admit at most `max_queue` waiting requests (`QueueFull` beyond) and report to `Metrics`.
Results cross to the event loop with `loop.call_soon_threadsafe`. `start_worker` picks a run's worker by
the endpoint that serves it; the engine's objects (a completion's `Sequence` and `TextPieces`) are made
here, from the validated request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from genlab.errors import GenlabError
from genlab.models.batching import ContinuousBatch, Sequence
from genlab.models.generation import TextPieces
from genlab.serve import schemas as s
from genlab.serve.errors import ApiError, QueueFull
from genlab.serve.metrics import Metrics
from genlab.tasks.contract import RunHandle, TextDecoding

log = logging.getLogger("genlab.serve")


@dataclass(eq=False)
class TextJob:
    """One completion (one prompt, one choice) of a request; events go to the request's queue as
    (index, kind, value): ("text", piece), ("end", finish_reason) or ("error", message).

    A streamed job sends each piece as it is settled; one that is not sends its first piece (the time to first
    token) and then the rest at its end: an event per token costs the event loop more than the answer needs."""

    index: int
    seq: Sequence
    pieces: TextPieces
    events: asyncio.Queue
    loop: asyncio.AbstractEventLoop
    stream: bool = True
    cancelled: bool = False
    held: str = ""  # settled text not sent yet
    told: bool = False  # a first piece was sent


Event = tuple[TextJob, str, Any]


@dataclass(eq=False)
class CompletionJobs:
    """A completions request in a text worker: a job per prompt and choice, whose events arrive on `events`."""

    jobs: list[TextJob]
    events: asyncio.Queue
    prompt_tokens: int

    def completion_tokens(self) -> int:
        return sum(len(job.seq.tokens) for job in self.jobs)


def post(events: list[Event]) -> None:
    """Hand a step's events to the event loop in one wake-up (not one per token: with many clients the
    loop's wake-ups, not the model, would bound the throughput)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Event]] = {}
    for event in events:
        by_loop.setdefault(event[0].loop, []).append(event)
    for loop, batch in by_loop.items():
        loop.call_soon_threadsafe(_enqueue, batch)


def _enqueue(events: list[Event]) -> None:
    for job, kind, value in events:
        job.events.put_nowait((job.index, kind, value))


class TextWorker:
    def __init__(self, name: str, decoding: TextDecoding, max_batch: int, max_queue: int, metrics: Metrics):
        self.name, self.decoding, self.metrics = name, decoding, metrics
        self.max_batch, self.max_queue = max_batch, max_queue
        self.batch = ContinuousBatch(decoding.model, max_batch)
        # this model's metric series, looked up once: they are updated at every step
        self.tokens, self.batch_sizes = metrics.tokens.labels(name), metrics.batch_size.labels(name)
        self.waiting: deque[TextJob] = deque()
        self.active: dict[Sequence, TextJob] = {}
        self.wake = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, name=f"genlab-text-{name}", daemon=True)
        self.thread.start()

    def complete(self, request: s.CompletionRequest) -> CompletionJobs:
        """Queue a completions request (QueueFull when too many wait); ApiError for a prompt it cannot read."""
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        encoded = [self.encode(prompt) for prompt in prompts]
        stops = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
        loop, events = asyncio.get_running_loop(), asyncio.Queue()
        jobs = [
            TextJob(
                p * request.n + j,
                self.sequence(ids, request, j),
                TextPieces(self.decoding.tokenizer, stops),
                events,
                loop,
                request.stream,
            )
            for p, ids in enumerate(encoded)
            for j in range(request.n)
        ]
        self.submit(jobs)
        return CompletionJobs(jobs, events, sum(len(ids) for ids in encoded))

    def encode(self, prompt: str) -> list[int]:
        """The prompt's ids, 1 to the model's context of them."""
        context = self.decoding.model.config.block_size
        try:
            ids = self.decoding.encode(prompt)
        except GenlabError as error:
            raise ApiError(422, f"prompt: {error}", param="prompt") from None
        if not ids or len(ids) > context:
            raise ApiError(
                422, f"prompt: the prompt is {len(ids)} tokens; {self.name} reads 1 to {context}", param="prompt"
            )
        return ids

    def sequence(self, ids: list[int], request: s.CompletionRequest, choice: int) -> Sequence:
        """Choice number `choice` of a prompt: its sampling settings (the seed is the request's + choice)."""
        return Sequence(
            ids,
            request.max_tokens,
            request.temperature,
            request.top_k,
            request.top_p if request.top_p < 1 else None,
            self.decoding.stop_ids,
            None if request.seed is None else request.seed + choice,
            *self.decoding.penalties(request.presence_penalty, request.frequency_penalty),
        )

    def submit(self, jobs: list[TextJob]) -> None:
        with self.wake:
            if len(self.waiting) + len(jobs) > self.max_queue:
                raise QueueFull(f"{len(self.waiting)} completions are waiting for {self.name}")
            self.waiting.extend(jobs)
            self.metrics.queue_depth.labels(self.name).set(len(self.waiting))
            self.wake.notify()

    def cancel(self, jobs: list[TextJob]) -> None:
        """The client went away (or the request ended): free the slots at the next step."""
        for job in jobs:
            job.cancelled = True

    def close(self) -> None:
        with self.wake:
            self.closed = True
            self.wake.notify()
        self.thread.join(timeout=10)

    def _admit(self) -> bool:
        """Move waiting jobs into the batch while it has room; False once the worker is closing."""
        refused: list[Event] = []
        with self.wake:
            while not self.closed and not self.waiting and not self.active:
                self.wake.wait()
            while self.waiting and len(self.active) < self.max_batch:
                job = self.waiting.popleft()
                if job.cancelled:
                    continue
                try:
                    self.batch.add(job.seq)
                except (GenlabError, ValueError) as error:  # checked by the app first; kept as a guard
                    refused.append((job, "error", str(error)))
                    continue
                self.active[job.seq] = job
            self.metrics.queue_depth.labels(self.name).set(len(self.waiting))
        post(refused)
        return not self.closed

    def _run(self) -> None:
        while self._admit():
            for job in [job for job in self.active.values() if job.cancelled]:
                self.batch.remove(job.seq)
                del self.active[job.seq]
            if not self.active:
                continue
            self.batch_sizes.observe(len(self.active))
            try:
                emitted = self.batch.step()
            except Exception as error:  # a broken model must not take the server down: fail this batch
                log.exception("decoding step failed for %s", self.name)
                for job in self.active.values():
                    self.batch.remove(job.seq)
                post([(job, "error", f"generation failed: {error}") for job in self.active.values()])
                self.active.clear()
                continue
            self.tokens.inc(len(emitted))
            events: list[Event] = []
            for seq, token in emitted:
                self._deliver(self.active[seq], token, events)
            post(events)

    def _deliver(self, job: TextJob, token: int, events: list[Event]) -> None:
        seq = job.seq
        # a stop token is not part of the text (seq2seq's <eos>)
        piece = "" if seq.finish_reason == "stop" else job.pieces.add(token)
        if job.pieces.stopped and not seq.done:  # the caller's stop string: this sequence ends here
            seq.finish_reason = "stop"
            self.batch.remove(seq)
        if seq.done:
            piece += job.pieces.finish()
        job.held += piece
        if job.held and (job.stream or not job.told or seq.done):
            events.append((job, "text", job.held))
            job.held, job.told = "", True
        if seq.done:
            events.append((job, "end", seq.finish_reason))
            del self.active[seq]


@dataclass(eq=False)
class BatchJob:
    payload: Any
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    cancelled: bool = False
    size: int = 1  # images or texts it asks for: what max_batch counts


@dataclass(eq=False)
class BatchWorker:
    """Runs `run(payloads) -> results` on every waiting job at once (up to max_batch items)."""

    name: str
    run: Callable[[list[Any]], list[Any]]
    max_batch: int
    max_queue: int
    metrics: Metrics
    produced: Any  # the metric that counts its outputs, by model: images, clips or texts classified
    waiting: deque = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.wake = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name=f"genlab-batch-{self.name}", daemon=True)
        self.thread.start()

    async def call(self, payload: Any, size: int) -> Any:
        loop = asyncio.get_running_loop()
        job = BatchJob(payload, loop.create_future(), loop, size=size)
        with self.wake:
            if len(self.waiting) >= self.max_queue:
                raise QueueFull(f"{len(self.waiting)} requests are waiting for {self.name}")
            self.waiting.append(job)
            self.metrics.queue_depth.labels(self.name).set(len(self.waiting))
            self.wake.notify()
        try:
            results = await job.future
        finally:
            job.cancelled = True  # a client that went away before its turn costs nothing
        self.produced.labels(self.name).inc(len(results))
        return results

    def close(self) -> None:
        with self.wake:
            self.closed = True
            self.wake.notify()
        self.thread.join(timeout=10)

    def _take(self) -> list[BatchJob] | None:
        with self.wake:
            while not self.closed and not self.waiting:
                self.wake.wait()
            if self.closed:
                return None
            jobs, size = [], 0
            while self.waiting and (not jobs or size + self.waiting[0].size <= self.max_batch):
                job = self.waiting.popleft()
                if not job.cancelled:
                    jobs.append(job)
                    size += job.size
            self.metrics.queue_depth.labels(self.name).set(len(self.waiting))
            return jobs

    def _loop(self) -> None:
        while (jobs := self._take()) is not None:
            if jobs:
                self.metrics.batch_size.labels(self.name).observe(sum(job.size for job in jobs))
                self._serve(jobs)

    def _serve(self, jobs: list[BatchJob]) -> None:
        try:
            results = self.run([job.payload for job in jobs])
        except Exception as error:
            if len(jobs) > 1:  # one bad request must not fail the others: each alone
                for job in jobs:
                    self._serve([job])
                return
            if not isinstance(error, GenlabError):  # GenlabError is the request's fault; the rest is ours
                log.exception("batch failed for %s", self.name)
            jobs[0].loop.call_soon_threadsafe(_settle, jobs[0].future, None, error)
            return
        for job, result in zip(jobs, results):
            job.loop.call_soon_threadsafe(_settle, job.future, result, None)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the request was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def count_flops(work: Callable[[], Any]) -> int:
    with FlopCounterMode(display=False) as counter:
        work()
    return int(counter.get_total_flops())


def start_worker(
    name: str, handle: RunHandle, limits: s.Limits, metrics: Metrics
) -> tuple[TextWorker | BatchWorker, int]:
    """The worker for a run, by the endpoint that serves it, and the run's FLOPs per token (text) or per
    image or clip, counted by a first call that also warms the model up."""
    if handle.endpoint == "completions":
        decoding = handle.text_decoding()
        flops = count_flops(lambda: decoding.model(torch.zeros(1, 1, dtype=torch.long)))
        return TextWorker(name, decoding, limits.max_batch, limits.max_queue, metrics), flops
    batch_worker = partial(BatchWorker, name, max_queue=limits.max_queue, metrics=metrics)
    if handle.endpoint == "images":
        flops = count_flops(lambda: handle.generate_images([{"n": 1, "seed": 0}]))
        return batch_worker(handle.generate_images, limits.max_batch * 4, produced=metrics.images), flops
    if handle.endpoint == "audio":  # per clip, the network's share (the Griffin-Lim vocoder is not counted)
        flops = count_flops(lambda: handle.generate_audio([{"n": 1, "seed": 0}]))
        return batch_worker(handle.generate_audio, limits.max_batch, produced=metrics.clips), flops
    if handle.endpoint == "translations":  # per text: greedy on a short probe (beam search costs more)
        flops = count_flops(lambda: handle.translate(["a short probe"], 1, 16))
        return batch_worker(partial(translate_each, handle), limits.max_batch, produced=metrics.translated), flops
    probe = []
    flops = count_flops(lambda: probe.extend(handle.classify(["a short probe text"])))
    classify = partial(classify_together, handle)
    return batch_worker(classify, limits.max_batch * 4, produced=metrics.classified), flops // max(probe[0].tokens, 1)


def classify_together(handle: RunHandle, batches: list[list[str]]) -> list[list[Any]]:
    """Several requests' texts classified in one call; each request gets its own texts' answers back."""
    scores = handle.classify([text for texts in batches for text in texts])
    out, start = [], 0
    for texts in batches:
        out.append(scores[start : start + len(texts)])
        start += len(texts)
    return out


def translate_each(handle: RunHandle, requests: list[tuple[list[str], int, int]]) -> list[list[str]]:
    """Each request's (texts, beam, max_tokens) translated; beam search goes one text at a time anyway."""
    return [handle.translate(texts, beam, max_tokens) for texts, beam, max_tokens in requests]
