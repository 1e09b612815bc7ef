"""`genlab chat RUN`: an interactive conversation with a chat run in the terminal.

Each line you type is a user message; the answer streams as it is generated. The whole conversation is the
model's context: when it outgrows it, the oldest exchanges are forgotten (the system prompt stays). `/reset`
forgets everything; an empty line is ignored; Ctrl-D or Ctrl-C at the prompt leaves, Ctrl-C during an answer
cuts it short. Reads piped stdin too (one message a line).
"""

from __future__ import annotations

import argparse
from typing import Any

from genlab import api
from genlab.errors import GenlabError
from genlab.io.chat_template import TooLong

YOU, ASSISTANT = "you> ", "assistant> "


def answer(handle: Any, messages: list[dict[str, str]], options: dict[str, Any]) -> str:
    """Stream the next turn; forget the oldest exchanges while the conversation overflows the context."""
    while True:
        try:
            pieces = handle.reply(messages, **options)
            first = next(pieces, "")  # an overflow shows here, before anything is printed
            break
        except TooLong:
            talk = [i for i, m in enumerate(messages) if m["role"] != "system"]
            if len(talk) <= 1:
                raise
            del messages[talk[0] : talk[1] + 1 if messages[talk[1]]["role"] == "assistant" else talk[1]]
            print("(forgot the oldest exchange: the conversation outgrew the model's context)", flush=True)
    text = first
    print(ASSISTANT + first, end="", flush=True)
    try:
        for piece in pieces:
            text += piece
            print(piece, end="", flush=True)
    except KeyboardInterrupt:
        print(" [cut short]", end="")
    print(flush=True)
    return text


def chat_loop(args: argparse.Namespace) -> None:
    handle = api.load(args.run, args.checkpoint)
    base = [{"role": "system", "content": args.system}] if args.system else []
    messages = list(base)
    options = {
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "seed": args.seed,
        "presence_penalty": args.presence_penalty,
        "frequency_penalty": args.frequency_penalty,
    }
    # Not a chat run, or a sampling option out of range: one line before the prompt (one token decoded).
    next(handle.reply([{"role": "user", "content": "hi"}], **options | {"max_tokens": 1}), None)
    print(f"chatting with {args.run}: /reset forgets the conversation, Ctrl-D or Ctrl-C leaves", flush=True)
    while True:
        try:
            line = input(YOU).strip()
        except (EOFError, KeyboardInterrupt):
            print(flush=True)
            return
        if line == "/reset":
            messages = list(base)
            print("(conversation forgotten)", flush=True)
        elif line:
            messages.append({"role": "user", "content": line})
            try:
                messages.append({"role": "assistant", "content": answer(handle, messages, options)})
            except GenlabError as error:  # this message alone is too long, or holds a chat marker: say so, go on
                messages.pop()
                print(f"(not sent: {error})", flush=True)
