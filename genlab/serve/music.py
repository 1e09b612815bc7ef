"""genlab's music route, POST /v1/music/generations: pieces from a run that writes scores (its `generate`
returns a result whose `.save` writes .mid, .wav and .png), answered as the WAV to play, the piano roll to
look at and the MIDI file to open, all base64 — what the playground's music panel shows.

The route names no task: a run qualifies by the files its results save (server.music_options), and the options a
request may set are its `generate`'s keyword arguments that have a plain default (a number or a word: mode,
tonic, bars, temperature ...). Options without one (a melody or prompt *file*) are refused, so no request
makes the server read a path of its own.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request

from genlab.errors import GenlabError
from genlab.serve import schemas as s
from genlab.serve.disconnects import unless_gone
from genlab.serve.errors import ApiError
from genlab.serve.openai import ERRORS, authorised
from genlab.serve.server import MUSIC_FILES, server_of
from genlab.tasks.contract import RunHandle

MAX_WAV_BYTES = 32 << 20  # about 6 minutes of FluidSynth's 22.05 kHz stereo: longer answers are refused
router = APIRouter(dependencies=[Depends(authorised)], responses=ERRORS)
render_lock = threading.Lock()  # one piece rendered at a time: FluidSynth and matplotlib are heavy, not shared


def options_of(body: s.MusicRequest, defaults: dict[str, Any]) -> dict[str, Any]:
    """The request's options, each as its default's type; an unknown one or a bad value is a 422 naming it."""
    out = {}
    for name, value in body.options.items():
        if name not in defaults:
            raise ApiError(422, f"options.{name}: this model takes {', '.join(defaults)}", param=f"options.{name}")
        kind = type(defaults[name])
        try:
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            out[name] = kind(value)
        except ValueError:
            message = f"options.{name}: {value!r} is not a {kind.__name__}"
            raise ApiError(422, message, param=f"options.{name}") from None
    return out


def render(handle: RunHandle, options: dict[str, Any]) -> dict[str, str]:
    """Generate and write the pieces once per file kind -> each kind's bytes in base64."""
    result = handle.generate(**options)
    with render_lock, tempfile.TemporaryDirectory() as folder:
        files = {suffix: result.save(Path(folder) / f"music{suffix}") for suffix in MUSIC_FILES}
        if files[".wav"].stat().st_size > MAX_WAV_BYTES:
            raise GenlabError("the pieces play for over 6 minutes: ask for fewer or shorter ones")
        return {suffix[1:]: base64.b64encode(path.read_bytes()).decode() for suffix, path in files.items()}


@router.post("/v1/music/generations", response_model=s.Music)
async def music(body: s.MusicRequest, request: Request) -> s.Music:
    """Pieces from a run that writes music (its model card's `music` lists the options): WAV, piano roll, MIDI."""
    started = time.perf_counter()
    server = server_of(request)
    defaults = server.card(body.model).music  # 404 for an unknown model
    model = server.served[body.model]
    if defaults is None:
        raise ApiError(422, "model: this model writes no music", param="model")
    options = {**options_of(body, defaults), "n": body.n, "seed": body.seed}
    try:
        files = await unless_gone(asyncio.to_thread(render, model.handle, options), request)
    except GenlabError as error:
        raise ApiError(422, str(error), param="options") from None
    cost = s.MusicCost(seconds=round(time.perf_counter() - started, 6))
    return s.Music(created=int(time.time()), model=model.name, pieces=body.n, **files, genlab=cost)
