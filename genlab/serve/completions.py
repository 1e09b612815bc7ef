"""The answer to a completions request, from the events of its jobs in the text worker: one JSON body, or
server-sent events (a chunk per piece of text) when the request streams."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from genlab.serve import schemas as s
from genlab.serve.disconnects import next_unless_gone
from genlab.serve.errors import ApiError
from genlab.serve.server import Served
from genlab.serve.workers import CompletionJobs


class CompletionReply:
    """The answer to one completions request, from the events its jobs send."""

    def __init__(self, model: Served, body: s.CompletionRequest, queued: CompletionJobs, started: float):
        self.model, self.body, self.queued, self.started = model, body, queued, started
        self.id, self.created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        self.first_text = True
        # the fields every streamed chunk repeats, serialised once: a chunk per token is the hot path
        self.chunk_head = json.dumps(
            {"id": self.id, "object": "text_completion", "created": self.created, "model": model.name}
        )[:-1]

    async def answer(self, request: Request) -> s.Completion | StreamingResponse:
        """The whole completion, or its stream; either way the jobs leave the batch when the answer ends."""
        if self.body.stream:  # the background task frees the slots even when a disconnect interrupts the stream
            return StreamingResponse(
                self.sse(),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                background=BackgroundTask(self.cancel),
            )
        try:
            return await self.collect(request)
        finally:
            self.cancel()

    def cancel(self) -> None:
        self.model.worker.cancel(self.queued.jobs)

    def usage(self) -> s.Usage:
        prompt, completion = self.queued.prompt_tokens, self.queued.completion_tokens()
        return s.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)

    async def events_until_done(self, request: Request | None) -> AsyncIterator[tuple[int, str, Any]]:
        """Every job's events until each has ended; ApiError if generation failed."""
        remaining = len(self.queued.jobs)
        while remaining:
            event = await next_unless_gone(self.queued.events, request)
            index, kind, value = event
            if kind == "error":
                raise ApiError(503, value, "server_error")
            if kind == "text" and self.first_text:
                self.first_text = False
                self.model.worker.metrics.first_token.labels(self.model.name).observe(
                    time.perf_counter() - self.started
                )
            remaining -= kind == "end"
            yield event

    async def gathered(self, request: Request) -> tuple[list[str], list[str | None]]:
        """Every choice's whole text and finish_reason, once each job has ended."""
        texts = [""] * len(self.queued.jobs)
        finish: list[str | None] = [None] * len(self.queued.jobs)
        async for index, kind, value in self.events_until_done(request):
            if kind == "text":
                texts[index] += value
            else:
                finish[index] = value
        return texts, finish

    async def collect(self, request: Request) -> s.Completion:
        texts, finish = await self.gathered(request)
        choices = [s.CompletionChoice(text=t, index=i, finish_reason=f) for i, (t, f) in enumerate(zip(texts, finish))]
        usage = self.usage()
        cost = self.model.cost(self.started, usage.total_tokens)
        return s.Completion(
            id=self.id, created=self.created, model=self.model.name, choices=choices, usage=usage, genlab=cost
        )

    def chunk(self, text: str | None, index: int = 0, finish_reason: str | None = None, **extra: Any) -> str:
        """One SSE event: a choice's new text (or its finish_reason), or with text None the usage chunk."""
        choices = (
            [] if text is None else [{"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}]
        )
        tail = "".join(f", {json.dumps(k)}: {v.model_dump_json()}" for k, v in extra.items())
        return f'data: {self.chunk_head}, "choices": {json.dumps(choices)}{tail}}}\n\n'

    async def sse(self) -> AsyncIterator[str]:
        """Server-sent events: a chunk per piece of text, a last chunk per choice with its finish_reason,
        the usage (if asked for) and `data: [DONE]`. A client that disconnects cancels the jobs."""
        try:
            async for index, kind, value in self.events_until_done(None):
                yield self.chunk(value, index) if kind == "text" else self.chunk("", index, value)
            options = self.body.stream_options
            if options and options.include_usage:
                usage = self.usage()
                yield self.chunk(None, usage=usage, genlab=self.model.cost(self.started, usage.total_tokens))
            yield "data: [DONE]\n\n"
        except ApiError as error:
            body = s.ErrorResponse(error=s.ErrorBody(message=error.message, type=error.kind, code=str(error.status)))
            yield f"data: {body.model_dump_json()}\n\n"
        finally:
            self.cancel()
