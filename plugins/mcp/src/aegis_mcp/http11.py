"""A minimal HTTP/1.1 server on trio for the MCP plane: ``h11`` underneath, ASGI (HTTP only) on top.

It serves exactly what :class:`aegis_mcp.front.FrontApp` and the ``mcp`` SDK's Starlette app need:

* HTTP/1.1 keep-alive (and HTTP/1.0), request bodies framed by ``Content-Length`` or chunked;
* the ASGI 3 ``http`` scope and its messages: ``http.request`` (``more_body``), ``http.disconnect``
  (once the response is complete or the client has gone), ``http.response.start`` and
  ``http.response.body`` (``more_body``: a response without ``Content-Length`` is streamed chunked,
  e.g. SSE; a single-message response gets a ``Content-Length``);
* ``Expect: 100-continue``; ``HEAD`` (body dropped);
* ``400`` for malformed HTTP (``431`` for oversized heads), ``413`` for bodies over ``max_body`` —
  then the connection is closed;
* ``408`` when a request (head and body) has not fully arrived ``request_timeout`` seconds after its
  first byte — whatever the pace of its bytes — then the connection is closed;
* ``503`` (``Retry-After: 1``, then close) for a connection beyond ``max_connections`` open ones;
* no lifespan, no websockets, no TLS, no HTTP/2.

Why not hypercorn: importing it cost ~170 ms here (h2, hpack, wsproto, …; ~40 ms with bytecode
caches) before the first request could be answered; this module with ``h11`` costs ~18 ms (~8 ms),
and a round trip is faster too (``contrib/bench/bench_mcp.py`` raw call ~0.47 → ~0.35 ms).

Slow and many clients are bounded: an idle keep-alive connection is closed after
``keep_alive_timeout`` seconds without a byte of a new request; from the first byte of a request its
head and body must arrive within ``request_timeout`` (a whole-request deadline, not a per-read
timeout: a client sending a header line every few minutes is answered ``408`` and dropped); at most
``max_connections`` connections are served at once, and the ones beyond are answered ``503`` at once
(the refusal itself is bounded: it writes ~100 bytes and lingers at most ``LINGER_SECONDS``). The time
an app takes to answer is the app's business (the plane's tools have their own deadlines).

Connections: each has its own task. A client that goes away never disturbs the service: a request
already handed to the app runs to completion (its writes are dropped). Shutdown (the ``serve`` task
cancelled): the listening socket is closed at once, idle connections are closed, and requests in
flight get ``graceful_timeout`` seconds to finish before they are cancelled too.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import h11
import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                        Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]

log = logging.getLogger("aegis_mcp.http")

MAX_BODY = 16 * 1024 * 1024
MAX_HEAD = 64 * 1024
READ_SIZE = 64 * 1024
LINGER_SECONDS = 1.0
LINGER_BYTES = 32 * 1024 * 1024
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
_DISCONNECT = {"type": "http.disconnect"}
_ACCEPT_TRANSIENT = {errno.ECONNABORTED, errno.EPROTO, errno.ECONNRESET, errno.EAGAIN, errno.EINTR}
_ACCEPT_RESOURCE = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_ASGI = {"version": "3.0", "spec_version": "2.3"}
_REASONS = {200: b"OK", 202: b"Accepted", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found",
            405: b"Method Not Allowed", 408: b"Request Timeout", 413: b"Content Too Large",
            421: b"Misdirected Request", 431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
            503: b"Service Unavailable"}
#: defaults of :class:`H11Server` (the plane's)
REQUEST_TIMEOUT = 60.0
MAX_CONNECTIONS = 256
_TIMEOUT_TEXT = "Request Timeout: the request did not arrive in time"


def _reason(status: int) -> bytes:
    reason = _REASONS.get(status)
    if reason is None:
        from http import HTTPStatus

        try:
            reason = HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b""
        _REASONS[status] = reason
    return reason


def _loggable(path: str) -> str:
    """``path`` for a log line: secrets in it (an MCP token) replaced (``aegis_kernel.redact``)."""
    from aegis_kernel import redact_secrets as redact

    return redact(path)


def _plain_response(status: int, text: str, extra: bytes = b"") -> bytes:
    """A complete ``Connection: close`` error response, written outside h11 (whatever its state)."""
    body = text.encode()
    return (b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"%sconnection: close\r\n\r\n%s" % (status, _reason(status), len(body), extra, body))


async def _lingering_close(stream: trio.SocketStream) -> None:
    """After an error answer sent before the request was read in full: stop writing, then read and
    drop what the client still sends (briefly, boundedly), so that closing with unread input does not
    reset the connection and destroy the answer before the client reads it."""
    try:
        await stream.send_eof()
        with trio.move_on_after(LINGER_SECONDS):
            dropped = 0
            while dropped < LINGER_BYTES:
                data = await stream.receive_some(READ_SIZE)
                if not data:
                    break
                dropped += len(data)
    except _BROKEN:
        pass


class _Closing(Exception):
    """The connection must be closed (after an error answer, or the peer went away)."""


class _RequestTimeout(Exception):
    """The request in progress missed its whole-request deadline."""


class H11Server:
    """Serves ``app`` (ASGI, ``http`` scope only) on an already listening stdlib TCP socket.

    ``await nursery.start(server.serve)`` reports ``started`` at once (the socket already listens).
    The socket is closed when ``serve`` returns (the caller may close it again: a no-op).

    Args:
        app: the ASGI application.
        sock: a bound, listening ``socket.socket`` (left non-inheritable: accepted sockets are too).
        max_body: request bodies larger than this get ``413`` and the connection is closed.
        graceful_timeout: on cancel, seconds a request in flight may still take.
        keep_alive_timeout: an idle connection (no byte of a next request for that long) is closed.
        request_timeout: a request's head and body must have arrived this many seconds after its
            first byte, else ``408`` and the connection is closed.
        max_connections: connections beyond this many open ones get ``503`` and are closed.
    """

    def __init__(self, app: ASGIApp, sock: socket.socket, *, max_body: int = MAX_BODY,
                 graceful_timeout: float = 0.5, keep_alive_timeout: float = 300.0,
                 request_timeout: float = REQUEST_TIMEOUT, max_connections: int = MAX_CONNECTIONS):
        self.app = app
        self.sock = sock
        self.max_body = max_body
        self.graceful_timeout = graceful_timeout
        self.keep_alive_timeout = keep_alive_timeout
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        addr = sock.getsockname()
        self.server_addr: tuple[str, int] = (addr[0], addr[1])
        self._inflight: set[trio.CancelScope] = set()
        self._closing_deadline: float | None = None
        #: open connections (diagnostics, tests)
        self.connections = 0
        #: connections answered 503 because ``max_connections`` were open (diagnostics, tests)
        self.refused = 0
        self._refusing = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listener = trio.socket.from_stdlib_socket(self.sock)
        self._closing_deadline = None
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                try:
                    while True:
                        try:
                            conn, _ = await listener.accept()
                        except OSError as exc:
                            if exc.errno in _ACCEPT_TRANSIENT:  # that client is gone already
                                continue
                            if exc.errno not in _ACCEPT_RESOURCE:
                                raise
                            log.warning("mcp http: accept failed (%s); retrying", exc)
                            await trio.sleep(0.1)  # out of descriptors or memory: wait, keep serving
                            continue
                        stream = trio.SocketStream(conn)
                        if self.connections >= self.max_connections:
                            self.refused += 1
                            if self._refusing < self.max_connections:
                                self._refusing += 1
                                nursery.start_soon(self._refuse, stream)
                            else:  # refusals pile up too: drop without a word
                                await trio.aclose_forcefully(stream)
                            continue
                        self.connections += 1  # counted here: the cap holds before the task runs
                        nursery.start_soon(self._connection, stream)
                finally:
                    # stop accepting now; requests in flight get the grace period, idle ones none
                    listener.close()
                    self._closing_deadline = trio.current_time() + self.graceful_timeout
                    for scope in self._inflight:
                        scope.deadline = min(scope.deadline, self._closing_deadline)
        finally:
            listener.close()

    async def _refuse(self, stream: trio.SocketStream) -> None:
        """Answer ``503`` to a connection over the cap and close it (bounded: ~1 s at most)."""
        try:
            with trio.move_on_after(LINGER_SECONDS):
                await stream.send_all(_plain_response(503, "Service Unavailable: too many connections",
                                                      b"retry-after: 1\r\n"))
                await _lingering_close(stream)
        except _BROKEN:
            pass
        finally:
            self._refusing -= 1
            await trio.aclose_forcefully(stream)

    async def _connection(self, stream: trio.SocketStream) -> None:
        connection = _Connection(self, stream)
        try:
            await connection.run()
        except (_Closing, *_BROKEN):
            pass
        except Exception:  # never let one connection take the service down
            log.exception("mcp http: connection failed")
        finally:
            self.connections -= 1
            if connection.linger:
                await _lingering_close(stream)
            await trio.aclose_forcefully(stream)

    def _shield(self) -> trio.CancelScope:
        scope = trio.CancelScope(shield=True)
        if self._closing_deadline is not None:
            scope.deadline = self._closing_deadline
        return scope


class _Connection:
    """One client connection: a loop of requests, each handed to the ASGI app."""

    def __init__(self, server: H11Server, stream: trio.SocketStream):
        self.server = server
        self.stream = stream
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.client: tuple[str, int] | None = None
        self.peer_closed = False
        self.responding = False  # a response has begun on the wire (no error answer possible then)
        self.linger = False  # close with a lingering close (an error answer went out early)
        #: when the request in progress must have arrived in full (None: no byte of it yet)
        self.request_deadline: float | None = None

    async def _read(self) -> None:
        """Read more input for h11. Waiting for a new request: closes (``_Closing``) after
        ``keep_alive_timeout``; once a request has begun: ``_RequestTimeout`` at its deadline."""
        deadline = self.request_deadline
        if deadline is None:
            deadline = trio.current_time() + self.server.keep_alive_timeout
        with trio.move_on_at(deadline):
            data = await self.stream.receive_some(READ_SIZE)
            if not data:
                self.peer_closed = True
            elif self.request_deadline is None:
                self._request_begins()
            self.conn.receive_data(data)
            return
        if self.request_deadline is None:
            raise _Closing  # idle too long
        raise _RequestTimeout

    def _request_begins(self) -> None:
        self.request_deadline = trio.current_time() + self.server.request_timeout

    async def _timed_out(self) -> None:
        """The request missed its deadline: ``408`` unless a response has begun; then close."""
        if not self.responding:
            await self._abort(408, _TIMEOUT_TEXT)
        raise _Closing

    async def _abort(self, status: int, text: str) -> None:
        """Answer an error outside the app and close the connection."""
        self.responding = self.linger = True
        try:
            await self.stream.send_all(_plain_response(status, text))
        except _BROKEN:
            pass
        raise _Closing

    async def _next_event(self) -> Any:
        """The next h11 event, reading as needed; malformed HTTP is answered (400) and closes."""
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                await self._protocol_error(exc)
            if event is h11.NEED_DATA:
                if self.peer_closed:  # h11 has seen the EOF already and still needs data
                    raise _Closing
                try:
                    await self._read()
                except _RequestTimeout:
                    await self._timed_out()
                continue
            return event

    async def _protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        status = exc.error_status_hint if exc.error_status_hint >= 400 else 400
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE) and not self.responding:
            await self._abort(status, f"Bad Request: {exc}" if status == 400 else str(exc))
        raise _Closing

    async def run(self) -> None:
        conn = self.conn
        while True:
            # a new request: its deadline starts with its first byte (now, when pipelined bytes wait)
            self.request_deadline = None
            if conn.trailing_data[0]:
                self._request_begins()
            event = await self._next_event()
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):  # cannot happen in state IDLE
                await self._abort(400, "Bad Request")
            exchange = await self._request(event)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            if conn.our_state is not h11.DONE:  # the app failed mid-response
                return
            if conn.their_state is h11.SEND_BODY:  # the app did not read the whole body
                if exchange.expected_continue and not exchange.sent_continue:
                    return  # the client may never send it
                drained = 0
                while True:
                    ev = await self._next_event()
                    if isinstance(ev, h11.Data):
                        drained += len(ev.data)
                        if drained > self.server.max_body:
                            return
                    elif isinstance(ev, h11.EndOfMessage):
                        break
                    else:
                        return
            if conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
            self.responding = False

    async def _request(self, request: h11.Request) -> _Exchange:
        server = self.server
        headers = list(request.headers)
        size = len(request.target)
        for name, value in headers:
            size += len(name) + len(value)
            if name == b"content-length":
                try:
                    too_big = int(value) > server.max_body
                except ValueError:  # h11 has validated it already
                    too_big = False
                if too_big:
                    await self._abort(413, "Request body too large")
        if size > MAX_HEAD:  # h11 enforces its limit only on a head still incomplete after a read
            await self._abort(431, "Request header fields too large")
        target = request.target
        if target[:1] != b"/":  # absolute-form ("http://host/path") or "*"
            scheme, sep, rest = target.partition(b"://")
            target = (b"/" + rest.partition(b"/")[2]) if sep else b"/"
        raw_path, _, query = target.partition(b"?")
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        if self.client is None:
            try:
                peer = self.stream.socket.getpeername()
                self.client = (peer[0], peer[1])
            except OSError:
                self.client = ("", 0)
        scope = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": request.http_version.decode("ascii"),
            "method": request.method.decode("ascii"),
            "scheme": "http",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": self.client,
            "server": server.server_addr,
        }
        exchange = _Exchange(self, request.method == b"HEAD")
        with server._shield() as scope_guard:
            server._inflight.add(scope_guard)
            try:
                await server.app(scope, exchange.receive, exchange.send)
            except _Closing:
                raise
            except Exception:
                if scope_guard.cancel_called:  # cancelled (perhaps inside a group): let the scope catch it
                    raise
                log.exception("mcp http: the app failed on %s %s", scope["method"], _loggable(path))
                if not self.responding and not exchange.closed:
                    await self._abort(500, "Internal Server Error")
                raise _Closing from None
            finally:
                server._inflight.discard(scope_guard)
                exchange.finish()
        if scope_guard.cancelled_caught:  # the grace period ran out
            raise _Closing
        if exchange.closed:
            raise _Closing
        if not exchange.started:  # the app returned without answering
            log.error("mcp http: the app sent no response to %s %s", scope["method"], _loggable(path))
            await self._abort(500, "Internal Server Error")
        if not exchange.complete:
            raise _Closing
        await exchange.wait_readers()
        return exchange


class _Exchange:
    """``receive``/``send`` for one request."""

    def __init__(self, connection: _Connection, head: bool):
        self.c = connection
        self.head = head
        self.expected_continue = connection.conn.they_are_waiting_for_100_continue
        self.sent_continue = False
        self.body_read = 0
        self.body_done = False
        self.started = False  # the app sent http.response.start (or we answered for it)
        self.complete = False  # the whole response is written
        self.closed = False  # the connection is unusable (client gone, or we answered an error)
        self._start: dict[str, Any] | None = None
        self._waiters: set[trio.CancelScope] = set()
        self._idle: trio.Event | None = None

    # -- receive -------------------------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        if self.body_done or self.closed:
            return await self._wait_disconnect()
        conn = self.c.conn
        if conn.they_are_waiting_for_100_continue and not self.started:
            self.sent_continue = True
            await self._write(conn.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))
        chunks: list[bytes] = []
        try:
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as exc:  # malformed chunked framing and the like
                    self.closed = True
                    await self.c._protocol_error(exc)  # answers 400 unless a response has begun
                if event is h11.NEED_DATA:
                    if chunks:  # deliver what we have rather than wait for the network
                        return self._body_message(chunks, more=True)
                    if self.c.peer_closed:
                        raise _Closing
                    await self.c._read()
                    continue
                if isinstance(event, h11.Data):
                    self.body_read += len(event.data)
                    if self.body_read > self.c.server.max_body:
                        if not self.c.responding:
                            self.c.responding = self.c.linger = True
                            await self._write(_plain_response(413, "Request body too large"))
                        self.closed = True
                        return dict(_DISCONNECT)
                    chunks.append(event.data)
                elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                    self.body_done = True
                    return self._body_message(chunks, more=False)
                else:  # ConnectionClosed mid-body
                    self.closed = True
                    return dict(_DISCONNECT)
        except _RequestTimeout:  # the body did not arrive in time
            if not self.c.responding:
                self.c.responding = self.c.linger = True
                await self._write(_plain_response(408, _TIMEOUT_TEXT))
            self.closed = True
            return dict(_DISCONNECT)
        except (_Closing, *_BROKEN):
            self.closed = True
            return dict(_DISCONNECT)

    @staticmethod
    def _body_message(chunks: list[bytes], more: bool) -> dict[str, Any]:
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return {"type": "http.request", "body": bytes(body), "more_body": more}

    async def _wait_disconnect(self) -> dict[str, Any]:
        """After the body: returns once the response is complete or the client has gone."""
        if self.complete or self.closed or self.c.peer_closed:
            return dict(_DISCONNECT)
        scope = trio.CancelScope()
        self._waiters.add(scope)
        try:
            with scope:
                if len(self._waiters) > 1 or len(self.c.conn.trailing_data[0]) > MAX_HEAD:
                    await trio.sleep_forever()  # one reader at a time (and no unbounded buffering)
                while True:
                    data = await self.c.stream.receive_some(READ_SIZE)
                    if not data:
                        self.c.peer_closed = True
                        self.c.conn.receive_data(b"")
                        break
                    self.c.conn.receive_data(data)  # a pipelined request: h11 buffers it
                    if len(self.c.conn.trailing_data[0]) > MAX_HEAD:
                        await trio.sleep_forever()
        except _BROKEN:
            self.closed = True
        finally:
            self._waiters.discard(scope)
            if not self._waiters and self._idle is not None:
                self._idle.set()
        if self.c.peer_closed and not self.complete:
            self.closed = True
        return dict(_DISCONNECT)

    def finish(self) -> None:
        """The app returned: wake anything still waiting for a disconnect."""
        for scope in self._waiters:
            scope.cancel()

    async def wait_readers(self) -> None:
        """Wait until no task reads the socket for this exchange (the next request may then)."""
        if self._waiters:
            self._idle = trio.Event()
            await self._idle.wait()

    # -- send ----------------------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            await self.c.stream.send_all(data)
        except _BROKEN:
            self.closed = True

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.started = True
            self._start = message
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        if self.complete:
            raise RuntimeError("http.response.body sent after the response completed")
        if not self.started:
            raise RuntimeError("http.response.body sent before http.response.start")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if not more:
            self.complete = True
        if self.closed:  # the client is gone (or we answered 413): drop it
            if not more:
                self.finish()
            return
        conn = self.c.conn
        out = b""
        start = self._start
        if start is not None:
            self._start = None
            headers = list(start.get("headers", ()))
            if not more and not any(n.lower() in (b"content-length", b"transfer-encoding") for n, _ in headers):
                headers.append((b"content-length", b"%d" % len(body)))
            status = start["status"]
            self.c.responding = True
            out = conn.send(h11.Response(status_code=status, headers=headers, reason=_reason(status)))
        if body and not self.head:
            out += conn.send(h11.Data(data=body))
        if not more:
            out += conn.send(h11.EndOfMessage())
        if out:
            await self._write(out)
        if not more:
            self.finish()
