"""The HTTP API's request and response bodies (OpenAI's shapes where OpenAI has one) and its limits.

Every limit is a field constraint, so a request beyond one gets a 422 that names the field, and the
OpenAPI schema at /docs states the limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from genlab.io.validate import SEED_MAX  # the CLI's seed range: a seed means the same on both
from genlab.models.generation import MAX_PENALTY


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; `genlab serve --max-batch/--max-queue` set the scheduler's."""

    max_batch: int = 16  # sequences decoded together per text model (images: images per forward pass)
    max_queue: int = 64  # requests waiting for a slot per model; beyond it: 429 with Retry-After
    max_body_bytes: int = 1 << 20  # larger bodies: 413


MAX_TOKENS = 2048  # per completion
MAX_CHOICES = 8  # n per prompt
MAX_PROMPTS = 16  # prompts in one completions request
MAX_PROMPT_CHARS = 8192  # one prompt (it must also fit the model's context, checked in tokens)
MAX_STOPS = 4  # stop strings, as OpenAI allows
MAX_IMAGES = 64  # n per image request
MAX_TEXTS = 64  # texts per classification request
MAX_CLIPS = 16  # clips per audio request (each is vocoded on the server)
MAX_TEXT_CHARS = 8192
MAX_PIECES = 4  # pieces per music request (each rendered by FluidSynth on the server)
MAX_SPEECH_CHARS = 4096  # OpenAI's limit for audio.speech; a model may take fewer (tts: 1,000)

Prompt = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROMPT_CHARS)]
Stop = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Label = int | Annotated[str, StringConstraints(min_length=1, max_length=64)] | None  # a class id or name
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]
OptionName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Base64 = Literal["b64_json"]  # images and clips come inline, base64-encoded (no URLs to fetch)


class Strict(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients send fields genlab does not use (user, ...)


class StreamOptions(Strict):
    include_usage: bool = False


class CompletionRequest(Strict):
    model: ModelName
    prompt: Prompt | Annotated[list[Prompt], Field(min_length=1, max_length=MAX_PROMPTS)]
    max_tokens: int = Field(16, ge=1, le=MAX_TOKENS)
    temperature: float = Field(1.0, ge=0.0, le=5.0, allow_inf_nan=False)
    top_p: float = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    top_k: int | None = Field(None, ge=1, le=100_000)
    stop: Stop | Annotated[list[Stop], Field(max_length=MAX_STOPS)] | None = None
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    presence_penalty: float | None = Field(None, ge=-MAX_PENALTY, le=MAX_PENALTY, allow_inf_nan=False)
    frequency_penalty: float | None = Field(None, ge=-MAX_PENALTY, le=MAX_PENALTY, allow_inf_nan=False)
    n: int = Field(1, ge=1, le=MAX_CHOICES)
    stream: bool = False
    stream_options: StreamOptions | None = None


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Cost(BaseModel):
    """genlab's addition to OpenAI's shapes: what the answer cost on the server."""

    seconds: float  # from the request's arrival to its last byte of work
    flops: int  # forward-pass FLOPs, from a per-token (per-image) count made at start-up


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    genlab: Cost | None = None


class ImageRequest(Strict):
    model: ModelName
    n: int = Field(1, ge=1, le=MAX_IMAGES)
    label: Label = Field(
        None, description="a class id or class name of a conditional model; omitted: every class in turn"
    )
    prompt: Text | None = Field(
        None, description="a caption, for a text-conditioned model (omitted: every class in turn)"
    )
    seed: Seed = 0
    text: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None, description="characters drawn as one line, in the style `label` names (runs that draw text: pix2pix)"
    )
    response_format: Base64 = "b64_json"


class ImageData(BaseModel):
    b64_json: str  # a PNG
    label: str | None = None  # the class asked for


class Images(BaseModel):
    created: int
    model: str
    data: list[ImageData]
    genlab: Cost | None = None


class AudioRequest(Strict):
    model: ModelName
    n: int = Field(1, ge=1, le=MAX_CLIPS)
    label: Label = Field(None, description='a class id or name ("seven"); omitted: every class in turn')
    text: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, description='labels to say in sequence, space-separated ("4 0 7"): one clip; n is then unused'
    )
    seed: Seed = 0
    response_format: Base64 = "b64_json"


class SpeechRequest(Strict):
    """OpenAI's audio.speech.create: `input` said in `voice`, answered with the WAV's bytes."""

    model: ModelName
    input: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SPEECH_CHARS)]
    voice: str = Field("allison", description="the run's one voice: allison (or default)")
    response_format: Literal["wav"] = "wav"


class MusicRequest(Strict):
    """Pieces from a run that writes music: `options` are its generate's (the model card's `music` lists them)."""

    model: ModelName
    n: int = Field(1, ge=1, le=MAX_PIECES)
    seed: Seed = 0
    options: dict[OptionName, str | int | float] = Field(default_factory=dict, max_length=32)


class MusicCost(BaseModel):
    seconds: float  # from the request's arrival to the files written (FLOPs are not counted for music)


class Music(BaseModel):
    """The pieces, one after another, as a 16-bit WAV, a piano-roll PNG and a MIDI file (each base64)."""

    created: int
    model: str
    pieces: int
    wav: str
    png: str
    mid: str
    genlab: MusicCost


class AudioClip(BaseModel):
    b64_json: str  # a 16-bit PCM WAV
    words: str  # what the clip says
    seconds: float


class AudioClips(BaseModel):
    created: int
    model: str
    data: list[AudioClip]
    genlab: Cost | None = None


class ClassificationRequest(Strict):
    model: ModelName
    input: Text | Annotated[list[Text], Field(min_length=1, max_length=MAX_TEXTS)]


class TranslationRequest(Strict):
    model: ModelName
    input: Text | Annotated[list[Text], Field(min_length=1, max_length=MAX_TEXTS)]
    beam: int = Field(4, ge=1, le=8)  # 1 = greedy
    max_tokens: int = Field(160, ge=1, le=512)


class Translation(BaseModel):
    index: int
    text: str


class Translations(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[Translation]
    genlab: Cost | None = None


class LabelProbability(BaseModel):
    label: str
    probability: float


class Classification(BaseModel):
    index: int
    label: str
    scores: list[LabelProbability]  # every label, likeliest first


class Classifications(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[Classification]
    usage: Usage
    genlab: Cost | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "genlab"
    task: str  # gan, lm, finetune, ...
    endpoint: str  # /v1/completions, /v1/images/generations or /v1/classifications
    parameters: int
    labels: list[str] | None = None  # image classes or classifier labels
    context: int | None = None  # tokens, for text models
    chat: bool | None = None  # True: the model reads the chat template, POST /v1/chat/completions speaks to it
    speech: bool | None = None  # True: the model says any text, POST /v1/audio/speech answers with its WAV
    music: dict[str, str | int | float] | None = None  # a music run: POST /v1/music/generations's options
    quality: dict | None = None  # the run's report.json evaluation sections
    cost: dict | None = None  # the run's training ledger


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
