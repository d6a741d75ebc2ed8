"""The ASGI app the plane serves: identity and origin checks, a fast JSON-RPC path, the SDK behind it.

Every request, whatever path answers it:

1. the path must be ``/mcp/<token>`` (a trailing ``/`` is tolerated) — else ``404``;
2. ``Host`` (when present) and ``Origin`` (when present) must name a loopback host
   (``127.0.0.1``, ``localhost``, ``[::1]``) — else ``421`` / ``403`` (DNS-rebinding protection,
   required by the MCP streamable-HTTP transport);
3. the token must resolve to a session handle (``kernel.identities.resolve``) — else ``403`` with a
   JSON-RPC error body: the request is refused and never reaches a tool.

The server is stateless (no ``Mcp-Session-Id``, no server-initiated messages): ``GET`` (the
optional SSE stream) and ``DELETE`` (session end) answer ``405``, as the transport allows.

**Fast path** (``fast_path=True``, the default): a ``POST`` in the handshake era (no
``MCP-Protocol-Version`` header, or one of 2024-11-05 … 2025-11-25) is answered here, without the
SDK: ``initialize``, ``ping``, ``tools/list``, ``tools/call``, notifications and client responses
(``202``), any other request method ``-32601 Method not found`` — the same answers, status codes
and tool results the SDK server gives in stateless JSON-response mode (tests compare the two).
Everything else — the 2026-07-28 per-request-envelope era (``MCP-Protocol-Version: 2026-07-28``) or
unknown protocol versions — goes to the ``mcp`` SDK's streamable-HTTP app, built on first need
(its ~1 s import runs in a worker thread so the event loop keeps serving meanwhile).

Hostile input: bodies are parsed by :func:`aegis_mcp.wirejson.loads` on both paths (the SDK path
gets the same body after the check): malformed, non-UTF-8, nested deeper than
:data:`~aegis_mcp.wirejson.MAX_DEPTH` or holding lone surrogates → ``400`` with a JSON-RPC error
(``-32700`` / ``-32600``), never a ``500``. Should anything in this app still fail unexpectedly, the
answer is a ``500`` carrying a JSON-RPC ``-32603 Internal error`` (the traceback goes to the log only).

Why: from another process a raw JSON-RPC tool call takes ~0.5 ms through the fast path (our code is
~30 µs of it, the ledger line ~20 µs; the rest is HTTP) and ~1.15 ms through the SDK app (pydantic
models, a memory-stream dispatcher and a server task per request); and the plane starts without
importing ``mcp`` (~1 s, ~40 MB) at all. See ``contrib/bench/bench_mcp.py``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .tools import ToolBridge

    Scope = dict[str, Any]
    Receive = Callable[[], Awaitable[dict[str, Any]]]
    Send = Callable[[dict[str, Any]], Awaitable[None]]

from . import __version__
from .wirejson import BadJson, dumps, loads

log = logging.getLogger("aegis_mcp")

SERVER_NAME = "aegis"
INSTRUCTIONS = "Aegis connects you with the other agent sessions of this workspace. Call aegis_meta first."
HANDLE_SCOPE_KEY = "aegis.handle"
MAX_BODY = 4 * 1024 * 1024

#: mirrors ``mcp_types.version`` (checked by the tests) without importing ``mcp_types`` (~0.4 s)
HANDSHAKE_PROTOCOL_VERSIONS: tuple[str, ...] = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_HANDSHAKE_VERSION = HANDSHAKE_PROTOCOL_VERSIONS[-1]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
#: the same policy in the SDK's ``TransportSecuritySettings`` vocabulary (for the delegated path)
ALLOWED_HOSTS = tuple(p for h in LOOPBACK_HOSTS for p in (h, f"{h}:*"))
ALLOWED_ORIGINS = tuple(p for s in ("http", "https") for h in LOOPBACK_HOSTS for p in (f"{s}://{h}", f"{s}://{h}:*"))

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
FORBIDDEN = -32001
#: bodies larger than this are parsed and checked in a worker thread (the event loop keeps serving)
THREAD_PARSE_BYTES = 256 * 1024

_JSON = b"application/json"


def host_ok(host: str | None) -> bool:
    """A ``Host`` header value naming a loopback host (any port)."""
    if host is None:
        return True  # HTTP/1.0 without Host: nothing to rebind
    if host.startswith("["):
        name = host[: host.find("]") + 1]
    else:
        name = host.partition(":")[0]
    return name.lower() in LOOPBACK_HOSTS and (len(host) == len(name) or host[len(name)] == ":")


def origin_ok(origin: str | None) -> bool:
    """An ``Origin`` header absent, or naming a loopback host over http(s), any port."""
    if not origin:
        return True
    scheme, sep, rest = origin.partition("://")
    return bool(sep) and scheme.lower() in ("http", "https") and "/" not in rest and host_ok(rest)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _respond(send: Send, status: int, body: bytes = b"", content_type: bytes = _JSON,
                   extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_body(code: int, message: str, id: Any = None, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return dumps({"jsonrpc": "2.0", "id": id, "error": error})


async def _parse(body: bytes) -> Any:
    """:func:`~aegis_mcp.wirejson.loads`, off the event loop for large bodies; raises ``BadJson``."""
    if len(body) > THREAD_PARSE_BYTES:
        return await trio.to_thread.run_sync(loads, body)
    return loads(body)


class _TooLarge(Exception):
    """The request body is over ``MAX_BODY``."""


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; None when the client went away; raises ``_TooLarge`` over ``MAX_BODY``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # client went away
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class _Tracked:
    """``send`` that remembers whether a response has begun (so a failure can still be answered)."""

    def __init__(self, send: Send):
        self._send = send
        self.started = False

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class RefusalLog:
    """Warnings about refused requests, at most one line per ``interval`` seconds per kind, the next
    one saying how many were refused in between. Anyone on this machine can send requests to the
    plane: one line per refusal would let them grow ``aegis.log`` at will (until the disk is full)."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._seen: dict[str, tuple[float, int]] = {}  # kind → (when its last line was written, refused since)

    def warning(self, kind: str, msg: str, *args: object) -> None:
        now = self.clock()
        last = self._seen.get(kind)
        if last is not None and now - last[0] < self.interval:
            self._seen[kind] = (last[0], last[1] + 1)
            return
        if last is not None and last[1]:
            msg, args = msg + " (and %d more since the last such line)", (*args, last[1])
        log.warning(msg, *args)
        self._seen[kind] = (now, 0)


class FrontApp:
    """ASGI app: checks every request, answers the handshake-era JSON-RPC POSTs itself (fast path),
    delegates the rest to the SDK app obtained from ``sdk()`` (``async () -> ASGI app``)."""

    def __init__(self, bridge: ToolBridge, sdk: Callable[[], Awaitable[Any]], *, fast_path: bool = True):
        self.bridge = bridge
        self.sdk = sdk
        self.fast_path = fast_path
        self.version = __version__
        self.refusals = RefusalLog()

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            tracked = _Tracked(send)
            try:
                await self._http(scope, receive, tracked)
            except Exception:
                log.exception("mcp: failed on %s %s", scope["method"], scope["path"][:5])  # no token in logs
                if tracked.started:
                    raise
                await _respond(tracked, 500, _error_body(INTERNAL_ERROR, "Internal error"))
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":  # not part of MCP: refuse the handshake
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        token = path[5:].rstrip("/") if path.startswith("/mcp/") else ""
        if not token or "/" in token:
            await _respond(send, 404, _error_body(INVALID_REQUEST, "Not Found: the MCP endpoint is /mcp/<token>"))
            return
        host = origin = version = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
            elif key == b"origin":
                origin = value.decode("latin-1")
            elif key == b"mcp-protocol-version":
                version = value.decode("latin-1")
        if not host_ok(host):
            self.refusals.warning("host", "mcp: refused a request with Host %r", host)
            await _respond(send, 421, b"Invalid Host header", b"text/plain; charset=utf-8")
            return
        if not origin_ok(origin):
            self.refusals.warning("origin", "mcp: refused a request with Origin %r", origin)
            await _respond(send, 403, b"Invalid Origin header", b"text/plain; charset=utf-8")
            return
        handle = self.bridge.resolve(token)
        if handle is None:
            self.refusals.warning("token", "mcp: refused a request with an unknown token")
            await _respond(send, 403, _error_body(FORBIDDEN, "Forbidden: unknown MCP token"))
            return
        scope[HANDLE_SCOPE_KEY] = handle
        method = scope["method"]
        if method == "POST":
            if self.fast_path and (version is None or version in HANDSHAKE_PROTOCOL_VERSIONS):
                await self._fast_post(scope, receive, send, handle)
                return
        elif method in ("GET", "DELETE"):
            # Stateless: no standalone SSE stream to open, no session to end.
            what = "SSE stream not offered" if method == "GET" else "Session termination not supported"
            await _respond(send, 405, _error_body(INVALID_REQUEST, f"Method Not Allowed: {what}"),
                           extra=[(b"allow", b"POST")])
            return
        if path != "/mcp/" + token:  # the SDK's route would answer a 307 to the canonical path
            canonical = "/mcp/" + token
            scope = {**scope, "path": canonical, "raw_path": canonical.encode()}
        if method == "POST":  # the SDK gets only bodies the fast path would parse too
            checked = await self._checked_body(receive, send)
            if checked is None:
                return
            receive = checked
        await self._delegate(scope, receive, send)

    async def _checked_body(self, receive: Receive, send: Send) -> Receive | None:
        """Read and check a POST body for the SDK; answer the refusal (and return None) when it is
        not acceptable JSON, else return a ``receive`` that hands the SDK the same body."""
        try:
            body = await _read_body(receive)
        except _TooLarge:
            await _respond(send, 413, b"Request body too large", b"text/plain; charset=utf-8")
            return None
        if body is None:
            return None
        try:
            await _parse(body)
        except BadJson as bad:
            await _respond(send, 400, _error_body(bad.code, bad.message, bad.id))
            return None
        replay: list[dict[str, Any]] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replayed() -> dict[str, Any]:
            return replay.pop() if replay else await receive()

        return replayed

    async def _delegate(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            app = await self.sdk()
        except Exception:
            log.exception("mcp: the SDK server could not be built")
            await _respond(send, 500, _error_body(-32603, "Internal error: MCP SDK server unavailable"))
            return
        await app(scope, receive, send)

    # -- fast path -----------------------------------------------------------------------------

    async def _fast_post(self, scope: Scope, receive: Receive, send: Send, handle: str) -> None:
        content_type = _header(scope, b"content-type")
        if content_type is None or not content_type.lower().startswith("application/json"):
            await _respond(send, 400, b"Invalid Content-Type header", b"text/plain; charset=utf-8")
            return
        try:
            body = await _read_body(receive)
        except _TooLarge:
            await _respond(send, 413, b"Request body too large", b"text/plain; charset=utf-8")
            return
        if body is None:
            return
        try:
            msg = await _parse(body)
        except BadJson as bad:
            await _respond(send, 400, _error_body(bad.code, bad.message, bad.id))
            return
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
            await _respond(send, 400, _error_body(INVALID_REQUEST, "Invalid Request: expected one JSON-RPC 2.0 message"))
            return
        rpc_method = msg.get("method")
        id_ = msg.get("id")
        if rpc_method is None:
            if "result" in msg or "error" in msg:  # a response to a server request: nothing to do
                await _respond(send, 202)
            else:
                await _respond(send, 400, _error_body(INVALID_REQUEST, "Invalid Request: no method"))
            return
        if id_ is None:  # a notification
            await _respond(send, 202)
            return
        if not isinstance(rpc_method, str) or not isinstance(id_, (str, int)) or isinstance(id_, bool):
            await _respond(send, 400, _error_body(INVALID_REQUEST, "Invalid Request: bad method or id"))
            return
        params = msg.get("params")
        if params is not None and not isinstance(params, dict):
            result_body = _error_body(INVALID_PARAMS, "Invalid request parameters", id_, "")
        elif rpc_method == "tools/call":
            name = params.get("name") if params else None
            arguments = params.get("arguments") if params else None
            if not isinstance(name, str) or not (arguments is None or isinstance(arguments, dict)):
                result_body = _error_body(INVALID_PARAMS, "Invalid request parameters", id_, "")
            else:
                result = await self.bridge.call(handle, name, arguments)
                result_body = _result_body(id_, result)
        elif rpc_method == "tools/list":
            result_body = _result_body(id_, {"tools": self.bridge.list_tools()})
        elif rpc_method == "ping":
            result_body = b'{"jsonrpc":"2.0","id":%s,"result":{}}' % dumps(id_)
        elif rpc_method == "initialize":
            requested = params.get("protocolVersion") if params else None
            if not isinstance(requested, str):
                result_body = _error_body(INVALID_PARAMS, "Invalid request parameters", id_, "")
            else:
                result_body = _result_body(id_, self.initialize_result(requested))
        else:
            result_body = _error_body(METHOD_NOT_FOUND, "Method not found", id_, rpc_method)
        await _respond(send, 200, result_body)

    def initialize_result(self, requested: str) -> dict[str, Any]:
        result: dict[str, Any] = {
            "capabilities": {"tools": {"listChanged": False}},
            "protocolVersion": requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION,
            "serverInfo": {"name": SERVER_NAME, "version": self.version},
        }
        if self.bridge.has_tool("aegis_meta"):
            result["instructions"] = INSTRUCTIONS
        return result


def _result_body(id_: Any, result: Any) -> bytes:
    """A JSON-RPC result; a result that cannot be serialized becomes a ``-32603`` error for ``id_``."""
    try:
        return dumps({"jsonrpc": "2.0", "id": id_, "result": result})
    except (ValueError, TypeError, RecursionError):
        log.exception("mcp: a result could not be serialized")
        return _error_body(INTERNAL_ERROR, "Internal error: the result is not serializable", id_)
