"""OpenAI's chat completions, `POST /v1/chat/completions`, for runs whose model reads the chat template
(genlab.io.chat_template): the messages are rendered into one prompt, which joins the same continuous batch
as /v1/completions; the answer ends at the end-of-turn marker. Streamed or not, `n` choices, `stop` strings."""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, StringConstraints

from genlab.errors import GenlabError
from genlab.io.chat_template import render
from genlab.serve import schemas as s
from genlab.serve.completions import CompletionReply
from genlab.serve.errors import ApiError
from genlab.serve.openai import ERRORS, authorised
from genlab.serve.server import Served, server_of

MAX_MESSAGES = 64
Content = Annotated[str, StringConstraints(max_length=s.MAX_PROMPT_CHARS)]


class TextPart(s.Strict):
    """One part of a message given as a list of parts, as OpenAI's clients may send it; genlab's chat models
    read text only, so an image or audio part is refused (422 naming the part's type)."""

    type: Literal["text"]
    text: Content


class ChatMessage(s.Strict):
    role: Literal["system", "user", "assistant"]
    content: Content | Annotated[list[TextPart], Field(min_length=1, max_length=MAX_MESSAGES)]

    def as_text(self) -> dict[str, str]:
        """{role, content} with a list of text parts joined by newlines, as the chat template reads it."""
        if isinstance(self.content, str):
            return {"role": self.role, "content": self.content}
        return {"role": self.role, "content": "\n".join(part.text for part in self.content)}


class ChatCompletionRequest(s.Strict):
    model: s.ModelName
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int = Field(160, ge=1, le=s.MAX_TOKENS)
    temperature: float = Field(1.0, ge=0.0, le=5.0, allow_inf_nan=False)
    top_p: float = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    stop: s.Stop | Annotated[list[s.Stop], Field(max_length=s.MAX_STOPS)] | None = None
    seed: int | None = Field(None, ge=0, le=s.SEED_MAX)
    presence_penalty: float | None = Field(None, ge=-s.MAX_PENALTY, le=s.MAX_PENALTY, allow_inf_nan=False)
    frequency_penalty: float | None = Field(None, ge=-s.MAX_PENALTY, le=s.MAX_PENALTY, allow_inf_nan=False)
    n: int = Field(1, ge=1, le=s.MAX_CHOICES)
    stream: bool = False
    stream_options: s.StreamOptions | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] | None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: s.Usage | None = None
    genlab: s.Cost | None = None


def completion_request(body: ChatCompletionRequest, model: Served) -> s.CompletionRequest:
    """The request as a completion of the rendered conversation (validated already: built without checks, since
    a long conversation may pass the prompt's character limit while fitting the model's context)."""
    if not model.worker.decoding.chat:
        raise ApiError(
            422, f"model: {model.name} is not a chat model; send it prompts at /v1/completions", param="model"
        )
    try:
        prompt = render([m.as_text() for m in body.messages])
    except GenlabError as error:
        raise ApiError(422, str(error), param="messages") from None
    context = model.worker.decoding.model.config.block_size
    tokens = len(model.worker.decoding.encode(prompt))
    if tokens >= context:
        raise ApiError(
            422,
            f"messages: the conversation is {tokens} tokens; {model.name} reads fewer than {context}",
            param="messages",
        )
    fields = body.model_dump(exclude={"messages"}) | {"prompt": prompt, "top_k": None}
    fields["stream_options"] = body.stream_options
    return s.CompletionRequest.model_construct(**fields)


class ChatReply(CompletionReply):
    """A completions reply in the chat shapes: a message per choice, or `chat.completion.chunk` deltas."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        head = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model.name}
        self.chunk_head = json.dumps(head)[:-1]
        self.started_choices: set[int] = set()

    async def collect(self, request: Request) -> ChatCompletion:
        texts, finish = await self.gathered(request)
        choices = [
            ChatChoice(index=i, message=AssistantMessage(content=t), finish_reason=f)
            for i, (t, f) in enumerate(zip(texts, finish))
        ]
        usage = self.usage()
        cost = self.model.cost(self.started, usage.total_tokens)
        return ChatCompletion(
            id=self.id, created=self.created, model=self.model.name, choices=choices, usage=usage, genlab=cost
        )

    def chunk(self, text: str | None, index: int = 0, finish_reason: str | None = None, **extra: Any) -> str:
        """A choice's new text as a delta (the first with the assistant's role), its finish_reason, or (text
        None) the usage chunk."""
        choices: list[dict[str, Any]] = []
        if finish_reason is not None:
            choices = [{"index": index, "delta": {}, "logprobs": None, "finish_reason": finish_reason}]
        elif text is not None:
            delta = {"content": text} if index in self.started_choices else {"role": "assistant", "content": text}
            self.started_choices.add(index)
            choices = [{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}]
        tail = "".join(f", {json.dumps(k)}: {v.model_dump_json()}" for k, v in extra.items())
        return f'data: {self.chunk_head}, "choices": {json.dumps(choices)}{tail}}}\n\n'


router = APIRouter(dependencies=[Depends(authorised)], responses=ERRORS)


@router.post("/v1/chat/completions", response_model=ChatCompletion)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    """OpenAI's chat completions; `stream: true` answers with server-sent `chat.completion.chunk` events."""
    started = time.perf_counter()
    model = server_of(request).model(body.model, "completions")
    asked = completion_request(body, model)
    reply = ChatReply(model, asked, model.worker.complete(asked), started)
    return await reply.answer(request)
