"""JSON-RPC 2.0 over a byte stream: the control socket's protocol, carrying operations.

One JSON-RPC message per line each way (:mod:`aegis_kernel.jsonrpc` is the one codec). A request's
``method`` is an operation name and its ``params`` the operation's arguments (an object); the reply's
``result`` is the operation's result. The transport implements nothing itself: every method is looked
up in the kernel's operation registry and called with this connection's principal, so authorization
and validation are the registry's.

Errors: ``-32601`` unknown operation, ``-32602`` bad arguments, ``-32000`` any other refusal
(``forbidden``, ``not_found``, …), ``-32700``/``-32600`` for lines that are not JSON-RPC requests. The
error's ``data`` is the operation error's dict (``{"error", "code", "param"?, …}``).

Streaming operations (``aegis_subscribe``): the server sends notifications
``{"method": "aegis_stream", "params": {"id": <request id>, "items": [...]}}`` — one per batch —
and then the final response ``{"result": {"end": true, "items": <count>}}``. A connection carries
one stream at a time; the client ends a stream by closing the connection.
"""

from __future__ import annotations

import logging
import socket as stdsocket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import jsonrpc

if TYPE_CHECKING:
    import trio

    from .kernel import Kernel
    from .operations import Caller

log = logging.getLogger("aegis.rpc")

MAX_LINE_BYTES = 16 * 1024 * 1024  # one request line; a longer one is refused and the connection closed
STREAM_METHOD = "aegis_stream"
_CODES = {"unknown_operation": jsonrpc.METHOD_NOT_FOUND, "bad_argument": jsonrpc.INVALID_PARAMS}
APP_ERROR = -32000


class RpcError(Exception):
    """A JSON-RPC error reply (or a broken connection, ``code`` None), with the operation error's data."""

    def __init__(self, message: str, *, code: int | None = None, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.rpc_code = code
        self.data = dict(data or {})

    @property
    def code(self) -> str:
        """The operation error code (``forbidden``, ``not_found``, …) or ``unavailable``."""
        return str(self.data.get("code") or ("unavailable" if self.rpc_code is None else "refused"))


# --- server -------------------------------------------------------------------------------------------


async def serve_connection(kernel: Kernel, stream: trio.abc.Stream, caller: Caller,
                           max_line: int = MAX_LINE_BYTES) -> None:
    """Answer JSON-RPC requests on ``stream`` as ``caller`` until the peer closes it."""
    import trio

    buffer = bytearray()
    try:
        async with stream:
            while True:
                newline = buffer.find(b"\n")
                while newline < 0 and len(buffer) <= max_line:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    start = len(buffer)
                    buffer += chunk
                    newline = buffer.find(b"\n", start)
                if newline < 0 or newline > max_line:
                    await _send(stream, jsonrpc.encode_error(
                        None, jsonrpc.INVALID_REQUEST, f"request line over {max_line} bytes: refused"))
                    return
                line = bytes(buffer[:newline])
                del buffer[:newline + 1]
                if line.strip():
                    if not await _answer(kernel, stream, caller, line, buffer):
                        return
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


async def _send(stream: trio.abc.Stream, *frames: bytes) -> None:
    await stream.send_all(b"".join(frame + b"\n" for frame in frames))


async def _answer(kernel: Kernel, stream: trio.abc.Stream, caller: Caller, line: bytes,
                  buffer: bytearray) -> bool:
    """Answer one line; False when the connection must end (a stream's client went away)."""
    from .kernel import unwrap_group
    from .operations import OperationError

    msg = jsonrpc.parse_line(line)
    if isinstance(msg, jsonrpc.Invalid):
        code = jsonrpc.PARSE_ERROR if msg.reason == "not JSON" else jsonrpc.INVALID_REQUEST
        await _send(stream, jsonrpc.encode_error(None, code, f"not a JSON-RPC request: {msg.reason}"))
        return True
    if not isinstance(msg, (jsonrpc.Request, jsonrpc.Notification)):
        return True  # a stray response: nothing to answer
    rid = msg.id if isinstance(msg, jsonrpc.Request) else None
    if msg.params is not None and not isinstance(msg.params, dict):
        await _send(stream, jsonrpc.encode_error(rid, jsonrpc.INVALID_PARAMS, "params must be an object"))
        return True
    try:
        result = await kernel.operations.call(kernel, msg.method, msg.params or {}, caller)
        op = kernel.operations.get(msg.method)
        if op is not None and op.stream:
            return await _stream(stream, rid, result, buffer)
        if rid is not None:
            await _send(stream, jsonrpc.encode_result(rid, result))
    except (OperationError, BaseExceptionGroup) as exc:
        err = unwrap_group(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(err, OperationError):
            if rid is not None:
                await _send(stream, jsonrpc.encode_error(rid, _CODES.get(err.code, APP_ERROR), err.message,
                                                         err.to_dict()))
        elif isinstance(exc, Exception):  # a handler's nursery failed: as any handler bug, an error reply
            await _internal_error(stream, rid, msg.method, err)
        else:  # Cancelled or KeyboardInterrupt inside: not the request's to answer
            raise
    except Exception as exc:  # noqa: BLE001 - one bad request never takes the kernel down
        await _internal_error(stream, rid, msg.method, exc)
    return True


async def _internal_error(stream: trio.abc.Stream, rid: Any, method: str, exc: BaseException) -> None:
    """Log a handler's bug and answer it (redacted) as ``internal``; the connection and the kernel go on."""
    from .redact import redact

    log.error("control request %s failed", method, exc_info=exc)
    if rid is not None:
        await _send(stream, jsonrpc.encode_error(rid, jsonrpc.INTERNAL_ERROR, redact(f"internal error: {exc}"),
                                                 {"error": redact(str(exc)), "code": "internal"}))


async def _stream(stream: trio.abc.Stream, rid: Any, items: Any, buffer: bytearray) -> bool:
    """Forward a streaming operation's batches; end it when the client closes the connection."""
    import trio

    count = 0
    client_left = False

    async def watch_client(cancel: trio.CancelScope) -> None:
        nonlocal client_left
        while True:  # anything the client sends during a stream is ignored; EOF ends the stream
            try:
                chunk = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                chunk = b""
            if not chunk:
                client_left = True
                cancel.cancel()
                return
            buffer.clear()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_client, nursery.cancel_scope)
            async for batch in items:
                count += len(batch)
                try:
                    await _send(stream, jsonrpc.encode_notification(STREAM_METHOD, {"id": rid, "items": batch}))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    client_left = True  # gone mid-send: the stream ends here (never an error of the owner's)
                    break
            nursery.cancel_scope.cancel()
    finally:
        await items.aclose()
    if client_left:
        return False
    if rid is not None:
        await _send(stream, jsonrpc.encode_result(rid, {"end": True, "items": count}))
    return True


# --- client (blocking; the CLI's) ---------------------------------------------------------------------


class RpcClient:
    """A blocking JSON-RPC client over a connected unix socket (one call at a time)."""

    def __init__(self, sock: stdsocket.socket, where: str = "the running Aegis") -> None:
        self.sock = sock
        self.where = where
        self.file = sock.makefile("rb")
        self._next = 0
        self.last_result: Any = None

    @classmethod
    def connect(cls, path: Path, timeout: float | None = 30.0, where: str = "the running Aegis") -> RpcClient:
        sock = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            raise
        return cls(sock, where)

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call one operation and return its result; raises :class:`RpcError`."""
        rid = self._request(method, params)
        while True:
            msg = self._read()
            if isinstance(msg, jsonrpc.Response) and msg.id == rid:
                return msg.result
            if isinstance(msg, jsonrpc.ErrorResponse):
                raise _error(msg)

    def stream(self, method: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Call an operation and yield the items it streams until it ends (close the client to stop
        early). The final result — of any operation, streaming or not — is then in ``last_result``."""
        rid = self._request(method, params)
        while True:
            msg = self._read()
            if isinstance(msg, jsonrpc.Notification) and msg.method == STREAM_METHOD \
                    and isinstance(msg.params, dict) and msg.params.get("id") == rid:
                yield from msg.params.get("items") or ()
            elif isinstance(msg, jsonrpc.Response) and msg.id == rid:
                self.last_result = msg.result
                return
            elif isinstance(msg, jsonrpc.ErrorResponse):
                raise _error(msg)

    def _request(self, method: str, params: Mapping[str, Any] | None) -> int:
        self._next += 1
        try:
            self.sock.sendall(jsonrpc.encode_request(self._next, method, dict(params or {})) + b"\n")
        except OSError as exc:
            raise RpcError(f"lost the connection to {self.where} ({exc})") from None
        return self._next

    def _read(self) -> jsonrpc.Message:
        try:
            line = self.file.readline()
        except OSError as exc:  # includes socket timeouts
            raise RpcError(f"{self.where} did not answer ({exc or 'timed out'})") from None
        if not line:
            raise RpcError(f"{self.where} closed the connection")
        msg = jsonrpc.parse_line(line)
        if isinstance(msg, jsonrpc.Invalid):
            raise RpcError(f"{self.where} sent something unreadable: {msg.raw[:200]!r}")
        return msg

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(msg: jsonrpc.ErrorResponse) -> RpcError:
    data = msg.data if isinstance(msg.data, dict) else {}
    return RpcError(msg.message, code=msg.code, data=data)


# --- client (async, trio; the attached TUI's) -----------------------------------------------------------


class AsyncRpcClient:
    """A trio JSON-RPC client over one connected stream: many calls in flight, at most one stream.

    Open it with :meth:`open` (``async with AsyncRpcClient.open(path) as client``): a reader task
    routes each reply to its caller by id, and each ``aegis_stream`` batch to the stream's consumer.
    Nothing blocks the event loop. When the connection breaks every waiting call raises
    :class:`RpcError` (``code`` ``unavailable``) and the stream ends with that error.
    """

    def __init__(self, stream: trio.abc.Stream, where: str = "the running Aegis", max_line: int = MAX_LINE_BYTES):
        import trio

        self._stream = stream
        self.where = where
        self._max_line = max_line
        self._next = 0
        self._waiting: dict[int, Any] = {}  # id -> [trio.Event, result or error]
        self._send_lock = trio.Lock()
        self._batches_send, self._batches = trio.open_memory_channel[Any](64)
        self._stream_id: int | None = None
        self._broken: RpcError | None = None

    @classmethod
    def open(cls, path: Path, where: str = "the running Aegis") -> Any:
        """An async context manager: connect to the unix socket ``path`` and serve replies until exit.
        An exception the body raises comes out as itself (not wrapped in an exception group)."""
        from contextlib import asynccontextmanager

        import trio

        @asynccontextmanager
        async def opened() -> Any:
            from .kernel import unwrap_group

            stream = await trio.open_unix_socket(str(path))
            client = cls(stream, where)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(client._read_loop)
                    try:
                        yield client
                    finally:
                        nursery.cancel_scope.cancel()  # the reader; never a checkpoint here (it would
                        # be cancelled too, and swallow what the body raised)
            except BaseExceptionGroup as group:  # what the body raised, as itself
                leaf = unwrap_group(group)
                if leaf is group:
                    raise
                raise leaf from None
            finally:
                with trio.CancelScope(shield=True):
                    await stream.aclose()

        return opened()

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call one operation and return its result; raises :class:`RpcError`."""
        rid, slot = self._slot()
        try:
            await self._write(jsonrpc.encode_request(rid, method, dict(params or {})))
            await slot[0].wait()
        finally:
            self._waiting.pop(rid, None)
        if isinstance(slot[1], RpcError):
            raise slot[1]
        return slot[1]

    async def stream(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call a streaming operation; an async iterator of its batches (lists of items) until it ends.
        One stream per connection (the server's rule): use another client for calls that must run
        alongside a long stream."""
        import trio

        if self._stream_id is not None:
            raise RpcError("this connection already carries a stream")
        rid, slot = self._slot()
        self._stream_id = rid
        await self._write(jsonrpc.encode_request(rid, method, dict(params or {})))
        try:
            while True:
                if self._broken is not None and slot[1] is None:
                    slot[1] = self._broken
                try:  # once broken: what is already buffered, then the end
                    batch = (self._batches.receive_nowait() if self._broken is not None
                             else await self._batches.receive())
                except trio.WouldBlock:
                    break
                if batch is None:
                    break
                yield batch
        finally:
            self._stream_id = None
            self._waiting.pop(rid, None)
        if isinstance(slot[1], RpcError):
            raise slot[1]

    def _slot(self) -> tuple[int, list[Any]]:
        import trio

        if self._broken is not None:
            raise self._broken
        self._next += 1
        slot: list[Any] = [trio.Event(), None]
        self._waiting[self._next] = slot
        return self._next, slot

    async def _write(self, frame: bytes) -> None:
        import trio

        if self._broken is not None:
            raise self._broken
        async with self._send_lock:
            try:
                await self._stream.send_all(frame + b"\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise RpcError(f"lost the connection to {self.where} ({exc})") from None

    async def _read_loop(self) -> None:
        import trio

        buffer = bytearray()
        reason = "closed the connection"
        try:
            while True:
                newline = buffer.find(b"\n")
                while newline < 0:
                    if len(buffer) > self._max_line:
                        reason = "sent a line that is too long"
                        return
                    chunk = await self._stream.receive_some(65536)
                    if not chunk:
                        return
                    start = len(buffer)
                    buffer += chunk
                    newline = buffer.find(b"\n", start)
                line = bytes(buffer[:newline])
                del buffer[:newline + 1]
                if line.strip():
                    await self._route(jsonrpc.parse_line(line))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            reason = f"dropped the connection ({exc})"
        finally:
            self._broken = RpcError(f"{self.where} {reason}")
            for slot in self._waiting.values():
                if slot[1] is None:
                    slot[1] = self._broken
                slot[0].set()
            if self._stream_id is not None:
                try:
                    self._batches_send.send_nowait(None)  # wakes the stream's consumer: it then raises
                except trio.WouldBlock:
                    pass  # the consumer has batches to read first; the end-of-stream check sees _broken

    async def _route(self, msg: jsonrpc.Message) -> None:
        if isinstance(msg, jsonrpc.Notification):
            params = msg.params if isinstance(msg.params, dict) else {}
            if msg.method == STREAM_METHOD and params.get("id") == self._stream_id and self._stream_id is not None:
                await self._batches_send.send(list(params.get("items") or ()))  # backpressure: the reader waits
            return
        if isinstance(msg, (jsonrpc.Response, jsonrpc.ErrorResponse)):
            slot = self._waiting.get(msg.id) if isinstance(msg.id, int) else None
            if slot is None:
                return
            slot[1] = msg.result if isinstance(msg, jsonrpc.Response) else _error(msg)
            slot[0].set()
            if msg.id == self._stream_id:
                await self._batches_send.send(None)
