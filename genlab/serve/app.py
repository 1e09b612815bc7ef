"""`genlab serve`: the HTTP API (OpenAI's shapes), its workers, metrics and the playground.

The app knows endpoints, not tasks: each served run's handle says which endpoint serves it
(`RunHandle.endpoint`) and implements what that endpoint calls, so a new task is served without
code here. Every error is a JSON body `{"error": {"message", "type", "param", "code"}}`; request
errors are 4xx and never carry a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path
from torch.utils.flop_counter import FlopCounterMode

from genlab.errors import GenlabError
from genlab.io.audio import wav_bytes
from genlab.io.images import png_bytes
from genlab.models.batching import Sequence
from genlab.models.generation import TextPieces
from genlab.serve import schemas as s
from genlab.serve.guard import Guard
from genlab.serve.metrics import Metrics
from genlab.serve.workers import BatchWorker, QueueFull, TextJob, TextWorker
from genlab.tasks.contract import RunHandle

log = logging.getLogger("genlab.serve")
STATIC = Path(__file__).parent / "static"
ENDPOINTS = {
    "completions": "/v1/completions",
    "images": "/v1/images/generations",
    "classifications": "/v1/classifications",
    "audio": "/v1/audio/generations",
}
DISCONNECT_POLL_SECONDS = 0.25


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.headers = status, message, kind, param, headers


class ClientGone(Exception):
    """The client closed the connection: its work is dropped."""


def error_response(
    status: int, message: str, kind: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = s.ErrorResponse(error=s.ErrorBody(message=message, type=kind, param=param, code=str(status)))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


@dataclass(eq=False)
class Served:
    """One run being served: its handle, the worker that batches its requests, its card."""

    name: str
    handle: RunHandle
    card: s.ModelCard
    worker: Any = None  # TextWorker | BatchWorker, started with the app
    unit_flops: int = 0  # per token (text) or per image/clip, counted once at start-up


def model_card(name: str, handle: RunHandle) -> s.ModelCard:
    report = handle.report
    modules = {id(m): m for m in vars(handle).values() if isinstance(m, torch.nn.Module)}
    parameters = sum(p.numel() for m in modules.values() for p in m.parameters())

    def scalars(section: Any) -> dict[str, Any]:
        if not isinstance(section, dict):
            return {}
        return {k: v for k, v in section.items() if isinstance(v, (int, float, str))}

    quality = {k: scalars(v) for k, v in report.items() if k != "cost" and scalars(v)}
    text = handle.endpoint == "completions"
    labels = None if text else handle.class_names or None  # [] (an unconditional model): no labels
    context = handle.text_decoding().model.config.block_size if text else None
    return s.ModelCard(
        id=name,
        created=int(handle.path.stat().st_mtime),
        task=handle.task,
        endpoint=ENDPOINTS[handle.endpoint],
        parameters=parameters,
        labels=labels,
        context=context,
        quality=quality or None,
        cost=scalars(report.get("cost")) or None,
    )


def count_flops(work: Any) -> int:
    with FlopCounterMode(display=False) as counter:
        work()
    return int(counter.get_total_flops())


def start_worker(served: Served, limits: s.Limits, metrics: Metrics) -> None:
    """The model's worker, and its cost per unit (this first call also warms the model up)."""
    handle, name = served.handle, served.name
    if handle.endpoint == "completions":
        decoding = handle.text_decoding()
        served.unit_flops = count_flops(lambda: decoding.model(torch.zeros(1, 1, dtype=torch.long)))
        served.worker = TextWorker(name, decoding, limits.max_batch, limits.max_queue, metrics)
    elif handle.endpoint == "images":
        served.unit_flops = count_flops(lambda: handle.generate_images([{"n": 1, "seed": 0}]))
        served.worker = BatchWorker(name, handle.generate_images, limits.max_batch * 4, limits.max_queue, metrics)
    elif handle.endpoint == "audio":  # per clip, the network's share (the Griffin-Lim vocoder is not counted)
        served.unit_flops = count_flops(lambda: handle.generate_audio([{"n": 1, "seed": 0}]))
        served.worker = BatchWorker(name, handle.generate_audio, limits.max_batch, limits.max_queue, metrics)
    else:
        probe = []
        served.unit_flops = count_flops(lambda: probe.extend(handle.classify(["a short probe text"])))
        served.unit_flops //= max(probe[0].tokens, 1)

        def classify(batches: list[list[str]]) -> list[list[Any]]:
            scores = handle.classify([text for texts in batches for text in texts])
            out, start = [], 0
            for texts in batches:
                out.append(scores[start : start + len(texts)])
                start += len(texts)
            return out

        served.worker = BatchWorker(name, classify, limits.max_batch * 4, limits.max_queue, metrics)


def create_app(handles: dict[str, RunHandle], limits: s.Limits = s.Limits(), api_key: str | None = None) -> FastAPI:
    """The server for `handles` (model name -> opened run). Workers start with the app's lifespan."""
    for handle in handles.values():
        if handle.endpoint not in ENDPOINTS:
            raise GenlabError(f"{handle.path} is a '{handle.task}' run, which genlab serve has no endpoint for")
    served = {name: Served(name, handle, model_card(name, handle)) for name, handle in handles.items()}
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for model in served.values():
            start_worker(model, limits, metrics)
        yield
        for model in served.values():
            model.worker.close()

    app = FastAPI(
        title="genlab",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="OpenAI-compatible endpoints for genlab runs, a playground at /, metrics at /metrics.",
    )
    app.state.served, app.state.metrics, app.state.limits = served, metrics, limits
    app.add_middleware(Guard, metrics=metrics, max_body_bytes=limits.max_body_bytes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")  # /docs offline: no CDN
    bearer = HTTPBearer(auto_error=False, description="--api-key / GENLAB_API_KEY, when the server has one")

    def authorised(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if api_key is None:
            return
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise ApiError(
                401,
                "missing or wrong API key: send 'Authorization: Bearer KEY'",
                "authentication_error",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def model_for(name: str, endpoint: str) -> Served:
        model = served.get(name)
        if model is None:
            raise ApiError(
                404, f"model: no model named {name!r}; served: {', '.join(served)}", "not_found_error", "model"
            )
        if model.handle.endpoint != endpoint:
            raise ApiError(
                422,
                f"model: {name} is served at {ENDPOINTS[model.handle.endpoint]}, not {ENDPOINTS[endpoint]}",
                param="model",
            )
        return model

    errors = {
        401: {"model": s.ErrorResponse},
        404: {"model": s.ErrorResponse},
        422: {"model": s.ErrorResponse},
        429: {"model": s.ErrorResponse},
    }
    v1 = {"dependencies": [Depends(authorised)], "responses": errors}

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, error.kind, error.param, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        where = [
            "body" if e["type"] == "json_invalid" else ".".join(str(p) for p in e["loc"] if p != "body") or "body"
            for e in problems
        ]
        message = "; ".join(f"{w}: {e['msg']}" for w, e in zip(where, problems))
        return error_response(422, message, "invalid_request_error", where[0] if where else None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(
            error.status_code, str(error.detail), "invalid_request_error", headers=getattr(error, "headers", None)
        )

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, error: QueueFull) -> JSONResponse:
        return error_response(
            429, f"the server is busy ({error}): retry shortly", "rate_limit_error", headers={"Retry-After": "1"}
        )

    @app.exception_handler(ClientGone)
    async def gone(request: Request, error: ClientGone) -> Response:
        return Response(status_code=499)  # nginx's "client closed request": no one reads it

    @app.exception_handler(GenlabError)
    async def bad_request(request: Request, error: GenlabError) -> JSONResponse:
        return error_response(422, str(error), "invalid_request_error")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return error_response(500, "internal server error (logged on the server)", "server_error")

    @app.get("/", include_in_schema=False)
    async def playground() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="genlab API",
            swagger_js_url="/swagger/swagger-ui-bundle.js",
            swagger_css_url="/swagger/swagger-ui.css",
            swagger_favicon_url="/swagger/favicon-32x32.png",
        )

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": list(served)}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", response_model=s.ModelList, **v1)
    async def models() -> s.ModelList:
        return s.ModelList(data=[model.card for model in served.values()])

    @app.get("/v1/models/{model}", response_model=s.ModelCard, **v1)
    async def model(model: str) -> s.ModelCard:
        if model not in served:
            raise ApiError(404, f"no model named {model!r}; served: {', '.join(served)}", "not_found_error", "model")
        return served[model].card

    @app.post(
        "/v1/completions",
        response_model=s.Completion,
        **v1,
        description="OpenAI's completions; `stream: true` answers with server-sent events.",
    )
    async def completions(body: s.CompletionRequest, request: Request) -> Any:
        started = time.perf_counter()
        model = model_for(body.model, "completions")
        decoding = model.worker.decoding
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        context = decoding.model.config.block_size
        encoded = []
        for prompt in prompts:
            try:
                ids = decoding.encode(prompt)
            except GenlabError as error:
                raise ApiError(422, f"prompt: {error}", param="prompt") from None
            if not ids or len(ids) > context:
                raise ApiError(
                    422, f"prompt: the prompt is {len(ids)} tokens; {model.name} reads 1 to {context}", param="prompt"
                )
            encoded.append(ids)
        stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        loop, events = asyncio.get_running_loop(), asyncio.Queue()
        jobs = [
            TextJob(
                p * body.n + j,
                Sequence(
                    ids,
                    body.max_tokens,
                    body.temperature,
                    body.top_k,
                    body.top_p if body.top_p < 1 else None,
                    decoding.stop_ids,
                    None if body.seed is None else body.seed + j,
                    body.presence_penalty,
                    body.frequency_penalty,
                ),
                TextPieces(decoding.tokenizer, stops),
                events,
                loop,
            )
            for p, ids in enumerate(encoded)
            for j in range(body.n)
        ]
        model.worker.submit(jobs)
        reply = CompletionReply(model, body, jobs, events, encoded, started)
        if body.stream:  # the background task frees the slots even when a disconnect interrupts the stream
            return StreamingResponse(
                reply.sse(),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                background=BackgroundTask(model.worker.cancel, jobs),
            )
        try:
            return await reply.collect(request)
        finally:
            model.worker.cancel(jobs)

    @app.post(
        "/v1/images/generations",
        response_model=s.Images,
        **v1,
        description="Images of an image run: `label` is a class id or name (conditional models).",
    )
    async def images(body: s.ImageRequest, request: Request) -> s.Images:
        started = time.perf_counter()
        model = model_for(body.model, "images")
        names = model.handle.class_names
        label = class_id(body.label, names)
        generated = await unless_gone(
            model.worker.call({"n": body.n, "label": label, "seed": body.seed}, body.n), request
        )
        metrics.images.labels(model.name).inc(body.n)
        pixels = (generated.images[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # (n, H, W)
        labels = generated.labels.tolist() if generated.labels is not None else [None] * body.n
        data = [
            s.ImageData(
                b64_json=base64.b64encode(png_bytes(np.ascontiguousarray(p), scale=1)).decode(),
                label=None if lab is None else names[lab],
            )
            for p, lab in zip(pixels, labels)
        ]
        return s.Images(
            created=int(time.time()), model=model.name, data=data, genlab=cost(started, model.unit_flops * body.n)
        )

    @app.post(
        "/v1/audio/generations",
        response_model=s.AudioClips,
        **v1,
        description="Clips of an audio run: `label` (id or name) per clip, or `text` said in sequence.",
    )
    async def audio(body: s.AudioRequest, request: Request) -> s.AudioClips:
        started = time.perf_counter()
        model = model_for(body.model, "audio")
        label = class_id(body.label, model.handle.class_names)
        if body.text is not None and label is not None:
            raise ApiError(422, "text: pass label or text, not both", param="text")
        clips = await unless_gone(
            model.worker.call({"n": body.n, "label": label, "seed": body.seed, "text": body.text}, body.n), request
        )
        metrics.clips.labels(model.name).inc(len(clips))
        rate = clips.sample_rate
        data = [
            s.AudioClip(
                b64_json=base64.b64encode(wav_bytes(wave.detach().float().numpy(), rate)).decode(),
                words=words,
                seconds=round(len(wave) / rate, 4),
            )
            for wave, words in zip(clips.waves, clips.words)
        ]
        return s.AudioClips(
            created=int(time.time()), model=model.name, data=data, genlab=cost(started, model.unit_flops * len(clips))
        )

    @app.post(
        "/v1/classifications",
        response_model=s.Classifications,
        **v1,
        description="Labels of texts, with every label's probability, from a fine-tuned classifier.",
    )
    async def classifications(body: s.ClassificationRequest, request: Request) -> s.Classifications:
        started = time.perf_counter()
        model = model_for(body.model, "classifications")
        texts = [body.input] if isinstance(body.input, str) else body.input
        if any(not t.strip() for t in texts):
            raise ApiError(422, "input: a text is empty or only spaces", param="input")
        answers = await unless_gone(model.worker.call(texts, len(texts)), request)
        metrics.classified.labels(model.name).inc(len(texts))
        tokens = sum(a.tokens for a in answers)
        data = [
            s.Classification(
                index=i, label=a.label, scores=[s.LabelProbability(label=label, probability=p) for label, p in a.scores]
            )
            for i, a in enumerate(answers)
        ]
        return s.Classifications(
            model=model.name,
            data=data,
            usage=s.Usage(prompt_tokens=tokens, completion_tokens=0, total_tokens=tokens),
            genlab=cost(started, model.unit_flops * tokens),
        )

    return app


def class_id(label: int | str | None, names: list[str]) -> int | None:
    """A label given as an id or a class name -> its id, checked against the model's classes."""
    if label is None:
        return None
    if not names:
        raise ApiError(422, "label: this model is unconditional (it takes no label)", param="label")
    if isinstance(label, str):
        by_name = {n.lower(): i for i, n in enumerate(names)}
        if label.lower() in by_name:
            return by_name[label.lower()]
        if not (label.isascii() and label.isdigit()):  # "²" is a digit to str.isdigit, not to int()
            raise ApiError(422, f"label: {label!r} is not one of {', '.join(names)}", param="label")
        label = int(label)
    if not 0 <= label < len(names):
        raise ApiError(422, f"label: must be in 0..{len(names) - 1}, got {label}", param="label")
    return label


def cost(started: float, flops: int) -> s.Cost:
    return s.Cost(seconds=round(time.perf_counter() - started, 6), flops=flops)


async def unless_gone(work: Awaitable[Any], request: Request) -> Any:
    """Await `work`, giving up (ClientGone) if the client disconnects first."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise ClientGone()
    finally:
        task.cancel()


class CompletionReply:
    """The answer to one completions request, from the events its jobs send."""

    def __init__(
        self,
        model: Served,
        body: s.CompletionRequest,
        jobs: list[TextJob],
        events: asyncio.Queue,
        encoded: list[list[int]],
        started: float,
    ):
        self.model, self.body, self.jobs, self.events, self.started = model, body, jobs, events, started
        self.id, self.created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        self.prompt_tokens = sum(len(ids) for ids in encoded)
        self.first_text = True
        # the fields every streamed chunk repeats, serialised once: a chunk per token is the hot path
        self.chunk_head = json.dumps(
            {"id": self.id, "object": "text_completion", "created": self.created, "model": model.name}
        )[:-1]

    def usage(self) -> s.Usage:
        completion = sum(len(job.seq.tokens) for job in self.jobs)
        return s.Usage(
            prompt_tokens=self.prompt_tokens, completion_tokens=completion, total_tokens=self.prompt_tokens + completion
        )

    def cost(self) -> s.Cost:
        return cost(self.started, self.model.unit_flops * self.usage().total_tokens)

    async def events_until_done(self, request: Request | None) -> AsyncIterator[tuple[int, str, Any]]:
        """Every job's events until each has ended; ApiError if generation failed."""
        remaining = len(self.jobs)
        while remaining:
            if request is None:
                event = await self.events.get()
            else:
                try:
                    event = await asyncio.wait_for(self.events.get(), DISCONNECT_POLL_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        raise ClientGone() from None
                    continue
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

    async def collect(self, request: Request) -> s.Completion:
        texts = [""] * len(self.jobs)
        finish: list[str | None] = [None] * len(self.jobs)
        async for index, kind, value in self.events_until_done(request):
            if kind == "text":
                texts[index] += value
            else:
                finish[index] = value
        choices = [s.CompletionChoice(text=t, index=i, finish_reason=f) for i, (t, f) in enumerate(zip(texts, finish))]
        return s.Completion(
            id=self.id,
            created=self.created,
            model=self.model.name,
            choices=choices,
            usage=self.usage(),
            genlab=self.cost(),
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
                yield self.chunk(None, usage=self.usage(), genlab=self.cost())
            yield "data: [DONE]\n\n"
        except ApiError as error:
            body = s.ErrorResponse(error=s.ErrorBody(message=error.message, type=error.kind, code=str(error.status)))
            yield f"data: {body.model_dump_json()}\n\n"
        finally:
            self.model.worker.cancel(self.jobs)
