"""The front of `genlab serve --workers N` (genlab.serve.front) against stand-in workers in this process: each
request goes to the worker with the fewest in flight (one client connection is spread over both), answers
pass through whole (streamed ones chunk by chunk), a worker that dies before answering gives a 502 and one
that dies mid-answer closes the client's connection (never a hang), a client that goes away has its worker
connection closed, and what the front refuses itself (no worker, too large a body) is the app's JSON error."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from genlab.serve.front import Backend, Balancer, Front


def test_the_balancer_picks_the_fewest_in_flight_and_takes_turns_among_equals():
    a, b = Backend(1, "a"), Backend(2, "b")
    balancer = Balancer([a, b])
    assert {balancer.pick().pid for _ in range(4)} == {1, 2}  # equals: both get requests
    a.in_flight = 3
    assert {balancer.pick().pid for _ in range(4)} == {2}
    b.answering = False  # a worker that missed its probe gets requests only when none answers
    assert balancer.pick() is a
    assert Balancer().pick() is None


class StandIn:
    """A worker on a Unix socket: answers `/plain` with its name, `/stream` in chunks, `/die` by closing before
    answering, `/cut` by closing mid-answer, `/hold` never (it records that its client went away)."""

    def __init__(self, name: str, path: Path):
        self.name, self.path, self.heads, self.left = name, path, [], asyncio.Event()

    async def start(self) -> asyncio.Server:
        return await asyncio.start_unix_server(self.serve, str(self.path))

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body, path = await reader.readexactly(length), head.split(b" ")[1]
        if path == b"/hold":
            await reader.read()  # the front closes this connection once its client has gone
            self.left.set()
        elif path == b"/plain":
            answer = json.dumps({"worker": self.name, "body": body.decode()}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (len(answer), answer)
            )
        elif path in (b"/stream", b"/cut"):
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for piece in (b"one ", b"two ", b"three"):
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.write(b"" if path == b"/cut" else b"0\r\n\r\n")
        writer.close()


async def with_front(tmp_path: Path, check, max_body_bytes: int = 1000) -> None:
    workers = [StandIn(name, tmp_path / f"{name}.http") for name in ("a", "b")]
    servers = [await worker.start() for worker in workers]
    balancer = Balancer([Backend(i, str(worker.path)) for i, worker in enumerate(workers)])
    front = await Front(balancer, max_body_bytes).listen("127.0.0.1", 0)
    url = f"http://127.0.0.1:{front.sockets[0].getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            await asyncio.wait_for(check(client, workers, balancer), 10)
    finally:
        for server in [front, *servers]:
            server.close()


def test_one_connection_s_requests_are_spread_and_pass_through_whole(tmp_path):
    async def check(client, workers, balancer):
        answers = [(await client.post("/plain", content=f"request {i}")).json() for i in range(4)]
        assert {a["worker"] for a in answers} == {"a", "b"}  # one client connection, both workers
        assert [a["body"] for a in answers] == [f"request {i}" for i in range(4)]
        assert all(b"connection: close" in head for worker in workers for head in worker.heads)
        async with client.stream("POST", "/stream", content="x") as stream:
            assert (await stream.aread()) == b"one two three"
        held = asyncio.create_task(client.post("/hold"))  # a long answer on one worker...
        await asyncio.sleep(0.1)
        assert sorted(b.in_flight for b in balancer.backends) == [0, 1]
        assert [(await client.post("/plain", content="")).json()["worker"] for _ in range(3)].count("a") in (0, 3)
        held.cancel()

    asyncio.run(with_front(tmp_path, check))


def test_a_dying_worker_gives_an_error_never_a_hang(tmp_path):
    async def check(client, workers, balancer):
        balancer.backends.append(Backend(9, str(tmp_path / "gone.http")))  # died: nobody listens
        for backend in balancer.backends[:2]:
            backend.in_flight = 1  # so the gone one is picked
        refused = await client.post("/plain")
        assert refused.status_code == 502 and "worker 9 stopped before answering" in refused.json()["error"]["message"]
        for backend in balancer.backends[:2]:
            backend.in_flight = 0
        balancer.backends.pop()
        async with client.stream("POST", "/cut") as stream:  # the worker closes mid-answer
            try:
                await stream.aread()
                raise AssertionError("a cut answer was taken for a whole one")
            except httpx.TransportError:
                pass
        assert (await client.post("/plain")).is_success  # the next request is answered

    asyncio.run(with_front(tmp_path, check))


def test_a_client_that_leaves_frees_its_worker_and_refusals_are_json(tmp_path):
    async def check(client, workers, balancer):
        held = asyncio.create_task(client.post("/hold"))
        await asyncio.sleep(0.1)
        held.cancel()  # the client goes away while its answer is awaited
        for _ in range(50):
            await asyncio.sleep(0.01)
            if any(w.left.is_set() for w in workers):  # its worker connection was closed
                break
        assert any(w.left.is_set() for w in workers) and all(b.in_flight == 0 for b in balancer.backends)
        too_large = await client.post("/plain", content=b"x" * 1001)
        assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "413"
        balancer.backends.clear()
        starting = await client.get("/health")
        assert starting.status_code == 503 and starting.headers["retry-after"] == "1"

    asyncio.run(with_front(tmp_path, check))


def test_chunked_uploads_pass_whole_and_what_is_not_http_gets_a_json_400(tmp_path):
    async def raw(client: httpx.AsyncClient, data: bytes) -> bytes:
        host, port = client.base_url.host, client.base_url.port
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(data)
        answer = await reader.read()  # the front closes after answering what it refuses
        writer.close()
        return answer

    async def check(client, workers, balancer):
        chunked = b"POST /plain HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        answer = await raw(client, chunked + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200") and json.loads(answer.split(b"\r\n\r\n")[1])["body"] == "abcde"
        too_large = await raw(client, chunked + b"3e9\r\n" + b"x" * 1001 + b"\r\n0\r\n\r\n")
        assert too_large.startswith(b"HTTP/1.1 413") and b'"code": "413"' in too_large
        garbage = await raw(client, b"hello there\r\n\r\n")
        assert garbage.startswith(b"HTTP/1.1 400") and b"a malformed request" in garbage

    asyncio.run(with_front(tmp_path, check))
