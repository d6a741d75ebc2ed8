"""The plane's HTTP/1.1 server (``aegis_mcp.http11``) on real loopback sockets, with small ASGI apps."""

from __future__ import annotations

import json
import logging
import socket
from contextlib import asynccontextmanager
from typing import Any

import h11
import httpx
import pytest
import trio

from aegis_mcp.http11 import H11Server

pytestmark = pytest.mark.trio


async def echo_app(scope, receive, send):
    """Answers with what it saw: method, path, query, the body and how many messages it came in."""
    if scope["path"] == "/noread":  # answers without reading the body
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    body, messages = b"", 0
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        body += message["body"]
        messages += 1
        if not message["more_body"]:
            break
    out = json.dumps({"method": scope["method"], "path": scope["path"], "raw_path": scope["raw_path"].decode(),
                      "query": scope["query_string"].decode(), "body": body.decode(), "messages": messages,
                      "client_port": scope["client"][1], "http_version": scope["http_version"],
                      "headers": {k.decode(): v.decode() for k, v in scope["headers"]}}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": out})


@asynccontextmanager
async def serving(app, **kwargs: Any):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = H11Server(app, sock, **kwargs)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            yield server, port, nursery
            nursery.cancel_scope.cancel()
    finally:
        sock.close()


class RawClient:
    """A socket and an h11 client connection, to send exact bytes and read the responses."""

    def __init__(self, stream: trio.SocketStream):
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int) -> RawClient:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
                continue
            return event

    async def response(self) -> tuple[h11.Response, bytes]:
        """Reads one whole response (after a raw request, h11's client side is told about it)."""
        if self.conn.our_state is h11.IDLE:  # we sent raw bytes: bring h11's client state along
            self.conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
            self.conn.send(h11.EndOfMessage())
        head = await self.next_event()
        while isinstance(head, h11.InformationalResponse):
            head = await self.next_event()
        assert isinstance(head, h11.Response), head
        body = b""
        while True:
            event = await self.next_event()
            if isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return head, body

    async def read_all(self) -> bytes:
        """Everything until the server closes."""
        out = b""
        with trio.fail_after(30):  # generous: only a hang fails
            while data := await self.stream.receive_some(65536):
                out += data
        return out

    async def aclose(self) -> None:
        await self.stream.aclose()


def headers_of(response: h11.Response) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in response.headers}


# -- requests and bodies -------------------------------------------------------------------------


async def test_keep_alive_serves_several_requests_on_one_connection():
    async with serving(echo_app) as (server, port, _):
        async with httpx.AsyncClient(timeout=5) as client:
            seen = []
            for i in range(5):
                r = await client.post(f"http://127.0.0.1:{port}/a%20b/{i}?x=1", content=b"x" * i)
                assert r.status_code == 200
                assert r.headers["content-length"] == str(len(r.content))  # one-message body: sized
                data = r.json()
                assert data["path"] == f"/a b/{i}" and data["raw_path"] == f"/a%20b/{i}" and data["query"] == "x=1"
                assert data["body"] == "x" * i and data["method"] == "POST" and data["http_version"] == "1.1"
                seen.append(data["client_port"])
            assert len(set(seen)) == 1  # one connection for all five
            assert server.connections == 1


async def test_pipelined_requests_are_answered_in_order():
    async with serving(echo_app) as (_, port, _):
        c = await RawClient.open(port)
        await c.send(b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n1"
                     b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n22")
        _, first = await c.response()
        _, second = await c.response()
        assert (json.loads(first)["path"], json.loads(first)["body"]) == ("/one", "1")
        assert (json.loads(second)["path"], json.loads(second)["body"]) == ("/two", "22")
        await c.aclose()


async def test_chunked_request_body():
    async with serving(echo_app) as (_, port, _):
        c = await RawClient.open(port)
        await c.send(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await trio.sleep(0.05)  # the rest arrives later: the app gets the body in several messages
        await c.send(b"6\r\n world\r\n0\r\n\r\n")
        response, body = await c.response()
        assert response.status_code == 200
        data = json.loads(body)
        assert data["body"] == "hello world" and data["messages"] >= 2
        # the connection is still usable
        await c.send(b"POST /again HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        _, body = await c.response()
        assert json.loads(body)["path"] == "/again"
        await c.aclose()


async def test_unread_body_is_drained_and_the_connection_reused():
    async with serving(echo_app) as (server, port, _):
        async with httpx.AsyncClient(timeout=5) as client:
            first = (await client.post(f"http://127.0.0.1:{port}/first", content=b"")).json()["client_port"]
            r = await client.post(f"http://127.0.0.1:{port}/noread", content=b"z" * 200_000)
            assert r.status_code == 204
            r = await client.post(f"http://127.0.0.1:{port}/next", content=b"ok")
            assert r.json()["body"] == "ok" and r.json()["client_port"] == first
            assert server.connections == 1


async def test_expect_100_continue():
    async with serving(echo_app) as (_, port, _):
        c = await RawClient.open(port)
        await c.send(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        with trio.fail_after(30):  # generous: only a hang fails
            head = await c.stream.receive_some(65536)
        assert head.startswith(b"HTTP/1.1 100 ")
        await c.send(b"abc")
        if rest := head.split(b"\r\n\r\n", 1)[1]:
            c.conn.receive_data(rest)  # (b"" would mean EOF to h11)
        response, body = await c.response()
        assert response.status_code == 200 and json.loads(body)["body"] == "abc"
        await c.aclose()


async def test_http10_and_head():
    async with serving(echo_app) as (_, port, _):
        c = await RawClient.open(port)
        await c.send(b"GET /old HTTP/1.0\r\n\r\n")
        raw = await c.read_all()  # HTTP/1.0 without keep-alive: the server closes after the answer
        assert raw.startswith(b"HTTP/1.1 200 ") and b'"http_version": "1.0"' in raw
        await c.aclose()

        c = await RawClient.open(port)
        await c.send(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
        await c.send(b"GET /after-head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = await c.read_all()
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"content-length: " in head.lower()
        assert rest.startswith(b"HTTP/1.1 200 ")  # no body after the HEAD answer
        assert b'"path": "/after-head"' in rest
        await c.aclose()


# -- responses -----------------------------------------------------------------------------------


async def test_streamed_response_is_chunked_and_arrives_as_sent():
    gate = trio.Event()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        await gate.wait()  # the client must have the first event before the second is produced
        await send({"type": "http.response.body", "body": b"data: two\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async with serving(app) as (_, port, _):
        async with httpx.AsyncClient(timeout=5) as client:
            async with client.stream("POST", f"http://127.0.0.1:{port}/sse", content=b"{}") as r:
                assert r.headers["transfer-encoding"] == "chunked" and "content-length" not in r.headers
                chunks = []
                async for chunk in r.aiter_raw():
                    chunks.append(chunk)
                    if len(chunks) == 1:
                        assert chunk == b"data: one\n\n"
                        gate.set()
            assert b"".join(chunks) == b"data: one\n\ndata: two\n\n"
            r = await client.post(f"http://127.0.0.1:{port}/again", content=b"")  # connection reusable
            assert r.status_code == 200


async def test_client_disconnect_mid_stream_reaches_the_app(caplog):
    saw_disconnect = trio.Event()
    sends_after = []

    async def app(scope, receive, send):
        if scope["path"] == "/ping":
            await echo_app(scope, receive, send)
            return
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})

        async def stream():
            for i in range(1000):
                await send({"type": "http.response.body", "body": b"data: %d\n\n" % i, "more_body": True})
                await trio.sleep(0.01)
            sends_after.append("exhausted")

        async with trio.open_nursery() as n:  # like Starlette: stream while listening for a disconnect
            n.start_soon(stream)
            message = await receive()
            assert message["type"] == "http.disconnect"
            saw_disconnect.set()
            n.cancel_scope.cancel()

    async with serving(app) as (server, port, _):
        c = await RawClient.open(port)
        await c.send(b"POST /sse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        with trio.fail_after(30):  # generous: only a hang fails
            assert (await c.stream.receive_some(65536)).startswith(b"HTTP/1.1 200 ")
        await c.aclose()
        with trio.fail_after(30):  # generous: only a hang fails
            await saw_disconnect.wait()
        assert sends_after == []
        # the server lives on
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.post(f"http://127.0.0.1:{port}/ping", content=b"")).status_code == 200
        with trio.fail_after(30):  # generous: only a hang fails
            while server.connections:
                await trio.sleep(0.01)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_client_gone_before_the_answer_lets_the_app_finish(caplog):
    received, finished = trio.Event(), trio.Event()

    async def app(scope, receive, send):
        await receive()
        received.set()
        await trio.sleep(0.2)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})  # dropped, no error
        finished.set()

    async with serving(app) as (_, port, _):
        c = await RawClient.open(port)
        await c.send(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        with trio.fail_after(30):  # generous: only a hang fails
            await received.wait()  # the app has the request: the client goes away before the answer
        await c.aclose()
        with trio.fail_after(30):  # generous: only a hang fails
            await finished.wait()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_app_failure_is_a_500_and_the_server_lives_on(caplog):
    async def app(scope, receive, send):
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        if scope["path"] == "/silent":
            return
        await echo_app(scope, receive, send)

    async with serving(app) as (_, port, _):
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(f"http://127.0.0.1:{port}/boom")
            assert r.status_code == 500
            r = await client.get(f"http://127.0.0.1:{port}/silent")
            assert r.status_code == 500
            r = await client.get(f"http://127.0.0.1:{port}/fine")
            assert r.status_code == 200
    assert any("boom" in str(r.exc_info) for r in caplog.records if r.exc_info)


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk size
])
async def test_malformed_http_is_a_400_and_closes(request_bytes):
    async with serving(echo_app) as (server, port, _):
        c = await RawClient.open(port)
        await c.send(request_bytes)
        raw = await c.read_all()
        assert raw.startswith(b"HTTP/1.1 400 "), raw
        assert b"connection: close" in raw.lower()
        await c.aclose()
        async with httpx.AsyncClient(timeout=5) as client:  # still serving
            assert (await client.get(f"http://127.0.0.1:{port}/ok")).status_code == 200


async def test_oversized_head_is_refused():
    async with serving(echo_app) as (_, port, _):
        c = await RawClient.open(port)
        await c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        raw = await c.read_all()
        assert raw.startswith(b"HTTP/1.1 431 ")
        await c.aclose()


async def test_body_too_large_is_a_413():
    async with serving(echo_app, max_body=1000) as (_, port, _):
        # declared: refused before any of the body is read
        c = await RawClient.open(port)
        await c.send(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
        raw = await c.read_all()
        assert raw.startswith(b"HTTP/1.1 413 ")
        await c.aclose()
        # chunked: refused once it grows past the limit
        c = await RawClient.open(port)
        await c.send(b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            await c.send(b"200\r\n" + b"x" * 0x200 + b"\r\n")
        raw = await c.read_all()
        assert raw.startswith(b"HTTP/1.1 413 ")
        await c.aclose()
        async with httpx.AsyncClient(timeout=5) as client:  # exactly the limit is fine
            r = await client.post(f"http://127.0.0.1:{port}/ok", content=b"y" * 1000)
            assert r.status_code == 200 and len(r.json()["body"]) == 1000


async def test_default_limit_is_16_mib():
    async with serving(echo_app) as (_, port, _):
        c = await RawClient.open(port)
        await c.send(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (16 * 1024 * 1024 + 1))
        assert (await c.read_all()).startswith(b"HTTP/1.1 413 ")
        await c.aclose()


async def test_idle_connection_times_out():
    async with serving(echo_app, keep_alive_timeout=0.2) as (server, port, _):
        c = await RawClient.open(port)
        with trio.fail_after(10):  # a generous deadline that only fails: the server closes the idle connection
            assert await c.read_all() == b""
        await c.aclose()


# -- slow and many clients (issue 12, finding 13) -------------------------------------------------


async def drip(c: RawClient, pieces: list[bytes], every: float) -> bytes:
    """Send ``pieces`` one every ``every`` seconds, reading meanwhile; returns what the server sent
    before closing (or, if it never closes, what it sent until ``every`` seconds after the last piece)."""
    out = b""
    for piece in [*pieces, b""]:
        with trio.move_on_after(every):
            while data := await c.stream.receive_some(65536):
                out += data
            return out  # the server closed the connection
        if piece:
            await c.send(piece)
    return out


async def test_a_header_line_every_250_seconds_does_not_keep_a_connection(autojump_clock):
    # each line arrives well within the 300 s idle timeout; the request as a whole takes 1250 s
    async with serving(echo_app) as (server, port, _):
        c = await RawClient.open(port)
        await c.send(b"POST /slow HTTP/1.1\r\nHost: x\r\n")
        lines = [b"X-Drip-%d: y\r\n" % i for i in range(4)] + [b"Content-Length: 0\r\n\r\n"]
        t0 = trio.current_time()
        answer = await drip(c, lines, every=250)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert trio.current_time() - t0 < 250  # answered at the request deadline, before the next line
        await c.aclose()
        await wait_for(lambda: server.connections == 0)


async def test_a_body_trickling_in_is_answered_408(autojump_clock):
    async with serving(echo_app, request_timeout=60) as (server, port, _):
        c = await RawClient.open(port)
        await c.send(b"POST /slow-body HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
        answer = await drip(c, [b"a", b"b", b"c", b"d", b"e", b"f"], every=25)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        await c.aclose()


async def test_a_request_within_its_deadline_is_served_after_a_long_idle(autojump_clock):
    async with serving(echo_app, request_timeout=60, keep_alive_timeout=300) as (_, port, _):
        c = await RawClient.open(port)
        await trio.sleep(290)  # idle, but under the keep-alive timeout
        await c.send(b"POST /late HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")
        await trio.sleep(50)  # the body 50 s later: within the request deadline
        await c.send(b"ok")
        response, body = await c.response()
        assert response.status_code == 200 and json.loads(body)["body"] == "ok"
        await c.aclose()


async def wait_for(predicate, timeout: float = 10) -> bool:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)
    return True


async def test_connections_over_the_cap_get_503_and_the_others_keep_being_served():
    async with serving(echo_app, max_connections=2) as (server, port, _):
        first, second = await RawClient.open(port), await RawClient.open(port)
        await wait_for(lambda: server.connections == 2)
        third = await RawClient.open(port)
        answer = b""
        with trio.fail_after(30):  # generous: the refusal lingers up to a second for the client's EOF
            while data := await third.stream.receive_some(65536):
                answer += data
        assert answer.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1" in answer.lower()
        assert server.refused == 1 and server.connections == 2
        await first.send(b"POST /still HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        response, body = await first.response()
        assert response.status_code == 200 and json.loads(body)["path"] == "/still"
        await second.aclose()
        await wait_for(lambda: server.connections == 1)
        fourth = await RawClient.open(port)
        await fourth.send(b"POST /room HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        response, _ = await fourth.response()
        assert response.status_code == 200
        for c in (first, third, fourth):
            await c.aclose()


# -- shutdown ------------------------------------------------------------------------------------


async def test_cancel_closes_promptly_with_idle_and_busy_connections():
    started = trio.Event()
    cancelled: list[bool] = []

    async def app(scope, receive, send):
        if scope["path"] == "/forever":
            started.set()
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                cancelled.append(True)
                raise
        await echo_app(scope, receive, send)

    with trio.fail_after(5):
        async with serving(app, graceful_timeout=0.3) as (server, port, nursery):
            idle = await RawClient.open(port)
            await idle.send(b"GET /warm HTTP/1.1\r\nHost: x\r\n\r\n")
            await idle.response()  # a keep-alive connection, now idle
            busy = await RawClient.open(port)
            await busy.send(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
            await started.wait()
            nursery.cancel_scope.cancel()
    # the block ended (within the generous fail_after): neither the idle connection nor the request that
    # never finishes held it; the request was cancelled after the grace period
    assert cancelled == [True]
    assert await idle.read_all() == b"" and await busy.read_all() == b""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


async def test_cancel_lets_a_request_in_flight_finish_within_the_grace_period():
    started = trio.Event()

    async def app(scope, receive, send):
        await receive()
        started.set()
        await trio.sleep(0.1)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"made it"})

    # a grace period far longer than the deadline: the server stops as soon as the request is done, not
    # at the end of the grace
    with trio.fail_after(10):
        async with serving(app, graceful_timeout=600) as (_, port, nursery):
            c = await RawClient.open(port)
            await c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            await started.wait()
            nursery.cancel_scope.cancel()
    raw = await c.read_all()
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b"made it")


async def test_accepted_sockets_are_not_inheritable():
    import os

    async with serving(echo_app) as (server, port, _):
        c = await RawClient.open(port)
        await c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await c.response()
        assert not os.get_inheritable(server.sock.fileno())
        fd_dir = "/proc/self/fd"
        if os.path.isdir(fd_dir):
            mine = {c.stream.socket.fileno()}
            leaked = [n for n in os.listdir(fd_dir) if int(n) not in mine and _inheritable_socket(fd_dir, n)]
            assert leaked == []
        await c.aclose()


def _inheritable_socket(fd_dir: str, name: str) -> bool:
    import os

    try:
        return os.readlink(f"{fd_dir}/{name}").startswith("socket:") and os.get_inheritable(int(name))
    except OSError:
        return False
