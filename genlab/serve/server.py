"""What every route reads (`app.state.server`): the served runs with their cards and workers, the metrics, the
limits and the API key.

The server knows endpoints, not tasks: each run's handle says which endpoint serves it (`RunHandle.endpoint`)
and implements what that endpoint calls.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Any

import torch
from fastapi import Request

from genlab.errors import GenlabError
from genlab.serve import schemas as s
from genlab.serve.errors import ApiError
from genlab.serve.metrics import Metrics
from genlab.serve.workers import start_worker
from genlab.tasks.contract import RunHandle

ENDPOINTS = {
    "completions": "/v1/completions",
    "images": "/v1/images/generations",
    "classifications": "/v1/classifications",
    "audio": "/v1/audio/generations",
    "translations": "/v1/translations",
}
MUSIC_FILES = (".wav", ".png", ".mid")  # a run whose results save all three writes music (POST /v1/music/generations)


@dataclass(eq=False)
class Served:
    """One run being served: its handle, the worker that batches its requests, its card."""

    name: str
    handle: RunHandle
    card: s.ModelCard
    worker: Any = None  # TextWorker | BatchWorker, started with the app
    unit_flops: int = 0  # per token (text) or per image/clip, counted once at start-up

    def cost(self, started: float, units: int) -> s.Cost:
        """An answer's cost: the time since the request came (`started`) and the FLOPs of its `units`."""
        return s.Cost(seconds=round(time.perf_counter() - started, 6), flops=self.unit_flops * units)


def scalars(section: Any) -> dict[str, Any]:
    """A report section's numbers and strings (nested sections left out)."""
    if not isinstance(section, dict):
        return {}
    return {k: v for k, v in section.items() if isinstance(v, (int, float, str))}


def speaks(handle: RunHandle) -> bool:
    """Whether the run says free text: an audio run whose generate takes `text` and no label to choose (a labelled
    run's text is its labels in sequence, which its clips panel already offers)."""
    return handle.endpoint == "audio" and "text" in handle.options("generate") and not handle.class_names


def music_options(handle: RunHandle) -> dict[str, Any] | None:
    """The options a music request may set (generate's keyword arguments with a number or a word as default,
    n and seed aside), with their defaults; None: the run writes no music."""
    if not set(MUSIC_FILES) <= set(handle.output_suffixes):
        return None
    parameters = inspect.signature(handle.generate).parameters.values()
    return {
        p.name: p.default for p in parameters if type(p.default) in (str, int, float) and p.name not in ("n", "seed")
    }


def model_card(name: str, handle: RunHandle) -> s.ModelCard:
    report = handle.report
    modules = {id(m): m for m in vars(handle).values() if isinstance(m, torch.nn.Module)}
    parameters = sum(p.numel() for m in modules.values() for p in m.parameters())
    quality = {k: scalars(v) for k, v in report.items() if k != "cost" and scalars(v)}
    text = handle.endpoint == "completions"
    labels = None if text else handle.class_names or None  # [] (an unconditional model): no labels
    context = handle.text_decoding().model.config.block_size if text else None
    chat = (text and handle.text_decoding().chat) or None
    speech = speaks(handle) or None
    return s.ModelCard(
        id=name,
        created=int(handle.path.stat().st_mtime),
        task=handle.task,
        endpoint=ENDPOINTS[handle.endpoint],
        parameters=parameters,
        labels=labels,
        context=context,
        chat=chat,
        speech=speech,
        music=music_options(handle),
        quality=quality or None,
        cost=scalars(report.get("cost")) or None,
    )


class Server:
    """The runs of `handles` (model name -> opened run), served under `limits`; `api_key` None: no key asked."""

    def __init__(self, handles: dict[str, RunHandle], limits: s.Limits, api_key: str | None):
        for handle in handles.values():
            if handle.endpoint not in ENDPOINTS:
                raise GenlabError(f"{handle.path} is a '{handle.task}' run, which genlab serve has no endpoint for")
        self.served = {name: Served(name, handle, model_card(name, handle)) for name, handle in handles.items()}
        self.metrics, self.limits, self.api_key = Metrics(), limits, api_key

    def start(self) -> None:
        for model in self.served.values():
            model.worker, model.unit_flops = start_worker(model.name, model.handle, self.limits, self.metrics)

    def close(self) -> None:
        for model in self.served.values():
            model.worker.close()

    def card(self, name: str) -> s.ModelCard:
        if name not in self.served:
            raise ApiError(
                404, f"no model named {name!r}; served: {', '.join(self.served)}", "not_found_error", "model"
            )
        return self.served[name].card

    def model(self, name: str, endpoint: str) -> Served:
        """The model a request names, which must be served at `endpoint`."""
        model = self.served.get(name)
        if model is None:
            raise ApiError(
                404, f"model: no model named {name!r}; served: {', '.join(self.served)}", "not_found_error", "model"
            )
        if model.handle.endpoint != endpoint:
            raise ApiError(
                422,
                f"model: {name} is served at {ENDPOINTS[model.handle.endpoint]}, not {ENDPOINTS[endpoint]}",
                param="model",
            )
        return model


def server_of(request: Request) -> Server:
    return request.app.state.server
