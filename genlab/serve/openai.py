"""The OpenAI-compatible API under /v1: the served models, completions (streamed or not), images, audio clips,
classifications and (genlab's own) translations. Every route asks for the API key when the server has one."""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from genlab.io.audio import wav_bytes
from genlab.serve import schemas as s
from genlab.serve.completions import CompletionReply
from genlab.serve.disconnects import unless_gone
from genlab.serve.errors import ApiError
from genlab.serve.outputs import classification_data, clip_data, image_data
from genlab.serve.server import ENDPOINTS, server_of

bearer = HTTPBearer(auto_error=False, description="--api-key / GENLAB_API_KEY, when the server has one")


def authorised(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    api_key = server_of(request).api_key
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


ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": s.ErrorResponse} for status in (401, 404, 422, 429)}
router = APIRouter(dependencies=[Depends(authorised)], responses=ERRORS)
SPEECH_VOICES = ("allison", "default")  # the speech runs' one voice


@router.get("/v1/models", response_model=s.ModelList)
async def models(request: Request) -> s.ModelList:
    return s.ModelList(data=[model.card for model in server_of(request).served.values()])


@router.get("/v1/models/{model}", response_model=s.ModelCard)
async def model(model: str, request: Request) -> s.ModelCard:
    return server_of(request).card(model)


@router.post(ENDPOINTS["completions"], response_model=s.Completion)
async def completions(body: s.CompletionRequest, request: Request) -> Any:
    """OpenAI's completions; `stream: true` answers with server-sent events."""
    started = time.perf_counter()
    model = server_of(request).model(body.model, "completions")
    reply = CompletionReply(model, body, model.worker.complete(body), started)
    return await reply.answer(request)


@router.post(ENDPOINTS["images"], response_model=s.Images)
async def images(body: s.ImageRequest, request: Request) -> s.Images:
    """Images of an image run: `label` is a class id or name (conditional models)."""
    started = time.perf_counter()
    model = server_of(request).model(body.model, "images")
    names = model.handle.class_names
    asked = {"n": body.n, "label": class_id(body.label, names), "seed": body.seed}
    for option in ("prompt", "text"):  # a caption (text-conditioned runs), a line to draw (glyph-style runs)
        value = getattr(body, option)
        if value is not None:
            if option not in model.handle.options("generate"):
                raise ApiError(422, f"{option}: this model takes no {option}", param=option)
            asked[option] = value
    generated = await unless_gone(model.worker.call(asked, body.n), request)
    data = image_data(generated, names)
    return s.Images(created=int(time.time()), model=model.name, data=data, genlab=model.cost(started, body.n))


@router.post(ENDPOINTS["audio"], response_model=s.AudioClips)
async def audio(body: s.AudioRequest, request: Request) -> s.AudioClips:
    """Clips of an audio run: `label` (id or name) per clip, or `text` said in sequence."""
    started = time.perf_counter()
    model = server_of(request).model(body.model, "audio")
    label = class_id(body.label, model.handle.class_names)
    if body.text is not None and label is not None:
        raise ApiError(422, "text: pass label or text, not both", param="text")
    asked = {"n": body.n, "label": label, "seed": body.seed, "text": body.text}
    clips = await unless_gone(model.worker.call(asked, body.n), request)
    data = clip_data(clips)
    return s.AudioClips(created=int(time.time()), model=model.name, data=data, genlab=model.cost(started, len(clips)))


@router.post("/v1/audio/speech", response_class=Response, responses={200: {"content": {"audio/wav": {}}}})
async def speech(body: s.SpeechRequest, request: Request) -> Response:
    """OpenAI's text-to-speech: `input` said by a run that takes text (task tts), as a 16-bit WAV."""
    started = time.perf_counter()
    model = server_of(request).model(body.model, "audio")
    if "text" not in model.handle.options("generate"):
        raise ApiError(422, "model: this model does not say text", param="model")
    if body.voice.lower() not in SPEECH_VOICES:
        raise ApiError(422, f"voice: this model speaks in one voice, allison (got {body.voice!r})", param="voice")
    clip = await unless_gone(model.worker.call({"text": body.input}, 1), request)
    wave = clip.waves[0].detach().float().numpy()
    cost = model.cost(started, 1)  # the body is the WAV itself, so the cost rides in headers
    headers = {"X-Genlab-Seconds": str(cost.seconds), "X-Genlab-Flops": str(cost.flops)}
    return Response(wav_bytes(wave, clip.sample_rate), media_type="audio/wav", headers=headers)


def input_texts(given: str | list[str]) -> list[str]:
    """A request's `input` (one text or a list) as a list; an empty or blank text is a 422."""
    texts = [given] if isinstance(given, str) else given
    if any(not t.strip() for t in texts):
        raise ApiError(422, "input: a text is empty or only spaces", param="input")
    return texts


@router.post(ENDPOINTS["classifications"], response_model=s.Classifications)
async def classifications(body: s.ClassificationRequest, request: Request) -> s.Classifications:
    """Labels of texts, with every label's probability, from a fine-tuned classifier."""
    started = time.perf_counter()
    model = server_of(request).model(body.model, "classifications")
    texts = input_texts(body.input)
    answers = await unless_gone(model.worker.call(texts, len(texts)), request)
    tokens = sum(a.tokens for a in answers)
    return s.Classifications(
        model=model.name,
        data=classification_data(answers),
        usage=s.Usage(prompt_tokens=tokens, completion_tokens=0, total_tokens=tokens),
        genlab=model.cost(started, tokens),
    )


@router.post(ENDPOINTS["translations"], response_model=s.Translations)
async def translations(body: s.TranslationRequest, request: Request) -> s.Translations:
    """Translations of texts by a translation run: beam search of width `beam` (1 = greedy)."""
    started = time.perf_counter()
    model = server_of(request).model(body.model, "translations")
    texts = input_texts(body.input)
    outputs = await unless_gone(model.worker.call((texts, body.beam, body.max_tokens), len(texts)), request)
    data = [s.Translation(index=i, text=t) for i, t in enumerate(outputs)]
    return s.Translations(model=model.name, data=data, genlab=model.cost(started, len(texts)))


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
