"""`genlab serve --workers N`'s front: the one process that holds the port. It takes every client's
connection and hands each *request* (not each connection) to the worker with the fewest requests in
flight, over that worker's own Unix socket, and passes the answer back as it comes (a stream chunk by chunk).

Why requests and not connections: a client keeps its connection for all its requests, so a kernel that
spreads connections (SO_REUSEPORT's hash) left one worker decoding 5 rows a step and the other 2 under 8
clients. Balancing each request over the fewest in flight is what a load balancer's "least requests" does
(nginx's least_conn, Envoy's LEAST_REQUEST, SGLang's router in front of its workers).

The front speaks just enough HTTP/1.1 to find where a request ends (its head, then Content-Length bytes or a
chunked body) and where its answer ends (Content-Length or the zero chunk). Each request gets a new connection
to its worker, asked to close after answering, so the answer's end is the worker's close; a worker that closes
before its answer is whole has died, and the client's connection is closed too (never a hang). A worker that
dies before its answer began is answered 502 here; with no worker ready (starting up) the answer is 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field

HEAD_LIMIT = 64 * 1024  # a request's or an answer's head: more is refused (431)
# hop-by-hop fields (RFC 9110 §7.6.1) and the body's framing: the front sets its own on each side
HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"upgrade", b"expect"}
FRAMING = {b"content-length", b"transfer-encoding"}
DROPPED = HOP | FRAMING  # what the worker does not get of a request's head


class Refused(Exception):
    """A request the front answers itself (`status`, a one-line `message`), closing the connection."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(eq=False)
class Backend:
    """A worker as the front sees it: where it listens, how many requests it has in flight, and whether its
    last health probe was answered (one that was not gets requests only when no worker answers)."""

    pid: int
    path: str
    in_flight: int = 0
    answering: bool = True


@dataclass(eq=False)
class Balancer:
    """The ready workers; `pick` gives the one with the fewest requests in flight, taking turns among equals."""

    backends: list[Backend] = field(default_factory=list)
    turn: int = 0

    def pick(self) -> Backend | None:
        choices = [b for b in self.backends if b.answering] or self.backends
        if not choices:
            return None
        self.turn += 1
        rotated = choices[self.turn % len(choices) :] + choices[: self.turn % len(choices)]
        return min(rotated, key=lambda b: b.in_flight)


@dataclass
class Request:
    method: bytes
    head: bytes  # as the worker gets it: Content-Length set, asked to close after answering
    body: bytes
    keep_alive: bool  # whether the client's connection serves another request after this one


def error_answer(status: int, message: str, keep_alive: bool = False) -> bytes:
    """An answer in the app's error shape (genlab.serve.errors), for what the front answers itself."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": str(status)}}).encode()
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}", "content-type: application/json"]
    head += [f"content-length: {len(body)}", "retry-after: 1" if status == 503 else ""]
    head += ["" if keep_alive else "connection: close"]
    return "\r\n".join(line for line in head if line).encode() + b"\r\n\r\n" + body


REASONS = {400: "Bad Request", 413: "Content Too Large", 431: "Request Header Fields Too Large"}
REASONS |= {502: "Bad Gateway", 503: "Service Unavailable"}


def parse_head(raw: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    """A head's lines (the first is the request or status line) and its fields by lower-case name."""
    lines = raw.rstrip(b"\r\n").split(b"\r\n")
    fields = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise Refused(400, f"a malformed header line: {line[:80]!r}")
        fields[name.lower()] = value.strip()
    return lines, fields


async def read_head(reader: asyncio.StreamReader, carry: bytes) -> bytes | None:
    """The next request's head, or None when the client closed between requests."""
    try:
        return carry + await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not (carry + error.partial).strip():
            return None
        raise Refused(400, "the request ended inside its head") from None
    except asyncio.LimitOverrunError:
        raise Refused(431, f"the request's head is over {HEAD_LIMIT} bytes") from None


async def read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    """A chunked body, whole (at most `limit` bytes)."""
    chunks, size = [], 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            length = int(line.split(b";")[0], 16)
        except ValueError:
            raise Refused(400, "a malformed chunk size") from None
        size += length
        if size > limit:
            raise Refused(413, f"the request body is larger than {limit} bytes")
        if length == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, then the blank line
                pass
            return b"".join(chunks)
        chunks.append((await reader.readexactly(length + 2))[:-2])


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, carry: bytes, limit: int
) -> Request | None:
    """The client's next request (None: it closed its connection), its body at most `limit` bytes."""
    raw = await read_head(reader, carry)
    if raw is None:
        return None
    lines, fields = parse_head(raw.lstrip(b"\r\n"))
    method, _, version = (lines[0].split(b" ") + [b"", b""])[:3]
    if not method or not version.startswith(b"HTTP/1."):
        raise Refused(400, f"not an HTTP/1.x request line: {lines[0][:80]!r}")
    if fields.get(b"expect", b"").lower() == b"100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client waits for this before sending its body
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        body = await read_chunked(reader, limit)
    else:
        try:
            length = int(fields.get(b"content-length", b"0"))
        except ValueError:
            length = -1
        if length < 0:
            raise Refused(400, "a malformed Content-Length")
        if length > limit:
            raise Refused(413, f"the request body is larger than {limit} bytes")
        body = await reader.readexactly(length)
    kept = [line for line in lines[1:] if line.partition(b":")[0].lower() not in DROPPED]
    head = b"\r\n".join([lines[0], *kept, b"content-length: %d" % len(body), b"connection: close"]) + b"\r\n\r\n"
    closes = fields.get(b"connection", b"").lower() == b"close" or version == b"HTTP/1.0"
    return Request(method, head, body, keep_alive=not closes)


def answer_head(raw: bytes, request: Request) -> tuple[bytes, int | None, bool]:
    """The worker's answer head as the client gets it, the body's length (None: chunked, ends with the zero
    chunk; -1: ends when the worker closes) and whether the client's connection stays open after it."""
    lines, fields = parse_head(raw)
    status = int(lines[0].split(b" ")[1])
    if request.method == b"HEAD" or status in (204, 304) or status < 200:
        length: int | None = 0
    elif b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        length = None
    else:
        length = int(fields[b"content-length"]) if b"content-length" in fields else -1
    keep_alive = request.keep_alive and length != -1
    kept = [line for line in lines[1:] if line.partition(b":")[0].lower() not in HOP]
    close = [] if keep_alive else [b"connection: close"]
    return b"\r\n".join([lines[0], *kept, *close]) + b"\r\n\r\n", length, keep_alive


async def copy_body(upstream: asyncio.StreamReader, client: asyncio.StreamWriter, length: int | None) -> bool:
    """Pass the answer's body on as it comes, until the worker closes; whether it was whole."""
    sent, tail = 0, b""
    with contextlib.suppress(ConnectionError):
        while chunk := await upstream.read(1 << 16):
            client.write(chunk)
            await client.drain()
            sent += len(chunk)
            tail = (tail + chunk)[-5:]
    if length is None:
        return tail == b"0\r\n\r\n"
    return length == -1 or sent == length


async def lingering_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close and read what the client still sends (a body the front refused) for up to a second, so that
    closing does not reset the connection before the client has read the refusal (nginx's lingering close)."""
    await writer.drain()
    writer.write_eof()
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(1):
            while await reader.read(1 << 16):
                pass


class Front:
    """Serves the port: each request to the worker `balancer` picks; bodies at most `max_body_bytes`."""

    def __init__(self, balancer: Balancer, max_body_bytes: int):
        self.balancer, self.max_body_bytes = balancer, max_body_bytes

    async def listen(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self.connection, host, port, limit=HEAD_LIMIT, backlog=2048)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client's connection: its requests one after another, until it closes or cannot be reused."""
        carry = b""  # a byte of the next request, read while watching for the client to go away
        try:
            while True:
                try:
                    request = await read_request(reader, writer, carry, self.max_body_bytes)
                except Refused as refused:
                    writer.write(error_answer(refused.status, refused.message))
                    await lingering_close(reader, writer)
                    break
                if request is None:
                    break
                keep_alive, carry = await self.answer(request, reader, writer)
                if not keep_alive:
                    break
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away, or sent what is not HTTP
        finally:
            writer.close()

    async def answer(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[bool, bytes]:
        """Relay `request` to a worker while watching the client: one that closes its connection meanwhile
        has its worker connection closed too (the worker then frees its rows). Whether the client's connection
        serves on, and the byte of its next request read meanwhile."""
        backend = self.balancer.pick()
        if backend is None:
            writer.write(error_answer(503, "no worker is ready yet (the models are loading)", request.keep_alive))
            return request.keep_alive, b""
        backend.in_flight += 1
        relay = asyncio.create_task(self.relay(request, backend, writer))
        watch = asyncio.create_task(reader.read(1))  # b"": the client closed; else its next request began
        try:
            await asyncio.wait((relay, watch), return_when=asyncio.FIRST_COMPLETED)
            if not relay.done() and (watch.exception() or watch.result() == b""):
                relay.cancel()  # closes the worker connection
                return False, b""
            keep_alive = await relay
        finally:
            backend.in_flight -= 1
            watch.cancel()
            await asyncio.wait((watch,))  # its read must end before the next request's begins
        if watch.cancelled():
            return keep_alive, b""
        carry = b"" if watch.exception() else watch.result()
        return keep_alive and carry != b"", carry

    async def relay(self, request: Request, backend: Backend, writer: asyncio.StreamWriter) -> bool:
        """Send `request` to `backend` and its answer to the client; whether the client's connection serves on."""
        upstream = None
        try:
            try:
                upstream = await asyncio.open_unix_connection(backend.path, limit=HEAD_LIMIT)
                upstream[1].write(request.head + request.body)
                await upstream[1].drain()
                raw = await upstream[0].readuntil(b"\r\n\r\n")
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                message = f"worker {backend.pid} stopped before answering (it is being replaced); retry"
                writer.write(error_answer(502, message, request.keep_alive))
                return request.keep_alive
            head, length, keep_alive = answer_head(raw, request)
            writer.write(head)
            return await copy_body(upstream[0], writer, length) and keep_alive
        finally:
            if upstream:  # also when the client went away (cancelled): the worker sees it leave
                upstream[1].close()
