"""The chat template: how a conversation (system / user / assistant messages) becomes one prompt string.

Each message is its role marker, a newline, its content and the end-of-turn marker, then a newline:

    <|system|>\\nYou are terse.<|end|>\\n<|user|>\\nHi<|end|>\\n<|assistant|>\\n

and a prompt that asks for a reply ends with the assistant's marker and newline. The markers are special
tokens of the tokenizer (one id each, never split and never in ordinary text), so the model learns where a
turn ends by predicting `<|end|>`, and generation stops there. The same template is written, as Jinja, into
the run's `tokenizer_config.json` as `chat_template`: `transformers`' `apply_chat_template` on the exported
tokenizer renders exactly the string `render` gives (tested).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError
from genlab.io.files import atomic_write_text

ROLES = ("system", "user", "assistant")
END = "<|end|>"  # the end-of-turn marker
MARKERS = {role: f"<|{role}|>" for role in ROLES}
CHAT_TOKENS = (*MARKERS.values(), END)  # special tokens the tokenizer must hold, one id each
# The Jinja form of `render`, for transformers' apply_chat_template (whitespace matters: no line breaks).
JINJA = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
TOKENIZER_CONFIG = "tokenizer_config.json"

Message = Mapping[str, Any]


class TooLong(GenlabError):
    """A conversation longer than the model's context (a chat loop may forget its oldest turns and retry)."""


def check_messages(messages: Sequence[Message], where: str = "messages") -> list[dict[str, str]]:
    """The messages as {role, content} dicts of strings, or a one-line GenlabError naming the first bad one."""
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise GenlabError(f"{where}: give at least one message")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise GenlabError(f"{where}[{i}]: a message is an object with 'role' and 'content'")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise GenlabError(f"{where}[{i}].role: {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise GenlabError(f"{where}[{i}].content: must be a string, got {type(content).__name__}")
        if any(marker in content for marker in CHAT_TOKENS):
            raise GenlabError(f"{where}[{i}].content: contains a chat marker ({', '.join(CHAT_TOKENS)})")
        checked.append({"role": role, "content": content})
    return checked


def turn(role: str, content: str) -> str:
    """One message as the template writes it."""
    return f"{MARKERS[role]}\n{content}{END}\n"


def render(messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """The prompt string of a conversation; with add_generation_prompt it asks for the assistant's next turn."""
    text = "".join(turn(m["role"], m["content"]) for m in check_messages(messages))
    return text + (f"{MARKERS['assistant']}\n" if add_generation_prompt else "")


def assistant_spans(messages: Sequence[Message]) -> tuple[str, list[tuple[int, int]]]:
    """The whole conversation rendered, and the character spans the model is trained to write: each
    assistant message's content and its end-of-turn marker (not the role marker, nor the newline after)."""
    text, spans = "", []
    for m in check_messages(messages):
        head = f"{MARKERS[m['role']]}\n"
        if m["role"] == "assistant":
            start = len(text) + len(head)
            spans.append((start, start + len(m["content"]) + len(END)))
        text += turn(m["role"], m["content"])
    return text, spans


def export_chat_template(folder: str | Path) -> Path:
    """Write `chat_template` (and the markers as special tokens, `<|end|>` as the end-of-sequence token that
    stops `generate`) into FOLDER/tokenizer_config.json, beside FOLDER/tokenizer.json."""
    path = Path(folder) / TOKENIZER_CONFIG
    settings: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False}
    if path.is_file():
        settings = json.loads(path.read_text(encoding="utf-8"))
    settings["chat_template"] = JINJA
    settings["eos_token"] = END
    settings["additional_special_tokens"] = list(CHAT_TOKENS)
    settings.setdefault("model_input_names", ["input_ids", "attention_mask"])
    atomic_write_text(path, json.dumps(settings, indent=2, ensure_ascii=False))
    return path


def add_chat_tokens(tokenizer: Any) -> Any:
    """A byte-level BPE tokenizer (genlab.io.tokenizers.BPETokenizer) with the chat markers as special tokens:
    one id each, read as themselves wherever they appear in a rendered prompt, dropped by `decode`."""
    from tokenizers import AddedToken

    tokenizer.tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CHAT_TOKENS])
    return tokenizer
