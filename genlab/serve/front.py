"""`genlab serve --workers N`'s front: the one process that holds the port. It takes every client's
connection and hands each *request* (not each connection) to the worker with the fewest requests in
flight, over that worker's own Unix socket, and passes the answer back as it comes (a stream chunk by chunk).

Why requests and not connections: a client keeps its connection for all its requests, so a kernel that
spreads connections (SO_REUSEPORT's hash) left one worker decoding 5 rows a step and the other 2 under 8
clients. Balancing each request over the fewest in flight is what a load balancer's "least requests" does
(nginx's least_conn, Envoy's LEAST_REQUEST, SGLang's router in front of its workers).

HTTP/1.1 is read and written by h11 (the sans-I/O parser uvicorn and httpx use) on both sides: the client's
connection serves request after request, and each request gets a new connection to its worker, asked to close
after answering. A worker that closes before its answer is whole has died: the client's connection is closed
too (never a hang). A worker that dies before its answer began is answered 502 here; with no worker ready
(starting up) the answer is 503. What the front answers itself closes the client's connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from http import HTTPStatus

import h11

HEAD_LIMIT = 64 * 1024  # a request's or an answer's head: more is refused (431)
# hop-by-hop fields (RFC 9110 §7.6.1), which each side sets for itself (h11 from the framing it chooses)
HOP = {b"connection", b"keep-alive", b"proxy-connection", b"te", b"upgrade", b"expect", b"transfer-encoding"}


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


def error_answer(status: int, message: str) -> bytes:
    """An answer in the app's error shape (genlab.serve.errors), for what the front answers itself; it closes
    the connection, so it is written without h11 (whose state a refused request may have left in error)."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": str(status)}}).encode()
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "content-type: application/json"]
    head += [f"content-length: {len(body)}", "connection: close"] + (["retry-after: 1"] if status == 503 else [])
    return "\r\n".join(head).encode() + b"\r\n\r\n" + body


async def next_event(connection: h11.Connection, reader: asyncio.StreamReader) -> h11.Event:
    """The next event h11 finds on `connection`, reading from `reader` as it needs (b"" = the peer closed)."""
    while (event := connection.next_event()) is h11.NEED_DATA:
        connection.receive_data(await reader.read(1 << 16))
    return event


@dataclass
class Request:
    head: h11.Request
    body: bytes

    def for_worker(self, worker: h11.Connection) -> bytes:
        """The request as its worker gets it through `worker` (h11's client side): its body's length set, asked
        to close after answering."""
        headers = [(k, v) for k, v in self.head.headers if k not in HOP and k != b"content-length"]
        if not any(k == b"host" for k, _ in headers):  # an HTTP/1.0 client's request may have none
            headers.append((b"host", b"genlab-worker"))
        headers += [(b"content-length", b"%d" % len(self.body)), (b"connection", b"close")]
        head = h11.Request(method=self.head.method, target=self.head.target, headers=headers)
        return worker.send(head) + worker.send(h11.Data(data=self.body)) + worker.send(h11.EndOfMessage())


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
        return await asyncio.start_server(self.connection, host, port, backlog=2048)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client's connection: its requests one after another, until it closes or cannot be reused."""
        client = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_LIMIT)
        try:
            while (request := await self.read_request(client, reader, writer)) is not None:
                await self.answer(client, request, reader, writer)
                if (client.our_state, client.their_state) != (h11.DONE, h11.DONE):
                    break  # either side asked to close (Connection: close, HTTP/1.0, an answer cut short)
                client.start_next_cycle()
            await writer.drain()
        except Refused as refused:
            writer.write(error_answer(refused.status, refused.message))
            with contextlib.suppress(ConnectionError):
                await lingering_close(reader, writer)
        except ConnectionError:
            pass  # the client went away, or its worker did mid-answer
        finally:
            writer.close()

    async def read_request(
        self, client: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        """The client's next request with its whole body (None: it closed its connection between requests)."""
        try:
            head = await next_event(client, reader)
            if isinstance(head, h11.ConnectionClosed):
                return None
            declared = dict(head.headers).get(b"content-length", b"0")  # h11 has checked it is a number
            if int(declared) > self.max_body_bytes:
                raise Refused(413, f"the request body is larger than {self.max_body_bytes} bytes")
            if client.they_are_waiting_for_100_continue:
                writer.write(client.send(h11.InformationalResponse(status_code=100, headers=[])))
            body = bytearray()
            while isinstance(part := await next_event(client, reader), h11.Data):
                body += part.data
                if len(body) > self.max_body_bytes:  # a chunked body declares no length
                    raise Refused(413, f"the request body is larger than {self.max_body_bytes} bytes")
            return Request(head, bytes(body))
        except h11.RemoteProtocolError as error:
            raise Refused(error.error_status_hint, f"a malformed request: {error}") from None

    async def answer(
        self, client: h11.Connection, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Relay `request` to a worker while watching the client: one that closes its connection meanwhile
        has its worker connection closed too (the worker then frees its rows)."""
        backend = self.balancer.pick()
        if backend is None:
            raise Refused(503, "no worker is ready yet (the models are loading)")
        backend.in_flight += 1
        relay = asyncio.create_task(self.relay(client, request, backend, writer))
        watch = asyncio.create_task(reader.read(1 << 16))  # b"": the client closed; else its next request began
        try:
            await asyncio.wait((relay, watch), return_when=asyncio.FIRST_COMPLETED)
            if not relay.done() and (watch.exception() or watch.result() == b""):
                relay.cancel()  # closes the worker connection
                await asyncio.wait((relay,))
                raise ConnectionAbortedError("the client left before its answer")
            await relay
        finally:
            backend.in_flight -= 1
            watch.cancel()
            await asyncio.wait((watch,))  # its read must end before the next request's begins
        if not watch.cancelled() and not watch.exception():
            client.receive_data(watch.result())  # what came meanwhile: the next request's start, or the close

    async def relay(self, client: h11.Connection, request: Request, backend: Backend, writer: asyncio.StreamWriter):
        """Send `request` to `backend` and its answer to the client as it comes."""
        worker, streams = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEAD_LIMIT), None
        try:
            try:
                streams = await asyncio.open_unix_connection(backend.path)
                streams[1].write(request.for_worker(worker))
                await streams[1].drain()
                answer = await next_event(worker, streams[0])
            except (OSError, h11.RemoteProtocolError):
                message = f"worker {backend.pid} stopped before answering (it is being replaced); retry"
                raise Refused(502, message) from None
            headers = [(k, v) for k, v in answer.headers if k not in HOP]
            writer.write(
                client.send(h11.Response(status_code=answer.status_code, headers=headers, reason=answer.reason))
            )
            try:
                while isinstance(part := await next_event(worker, streams[0]), h11.Data):
                    writer.write(client.send(part))
                    await writer.drain()
            except h11.RemoteProtocolError:
                raise ConnectionAbortedError(f"worker {backend.pid} closed before its answer was whole") from None
            writer.write(client.send(h11.EndOfMessage()))
        finally:
            if streams:  # also when the client went away (cancelled): the worker sees it leave
                streams[1].close()
