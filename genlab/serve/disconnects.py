"""Waiting on a model while watching the client: one that disconnects meanwhile drops its work (`ClientGone`).

The connection is polled every DISCONNECT_POLL_SECONDS, so a request nobody reads frees its batch slot within
that time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import Request

from genlab.serve.errors import ClientGone

DISCONNECT_POLL_SECONDS = 0.25


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


async def next_unless_gone(events: asyncio.Queue, request: Request | None) -> Any:
    """The queue's next item; with a `request`, ClientGone if its client disconnects first."""
    while request is not None:
        try:
            return await asyncio.wait_for(events.get(), DISCONNECT_POLL_SECONDS)
        except TimeoutError:
            if await request.is_disconnected():
                raise ClientGone() from None
    return await events.get()
