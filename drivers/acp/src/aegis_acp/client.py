"""A trio JSON-RPC client for one ACP agent process (the *client* side of ACP).

:class:`AcpClient` owns the reading of the agent's stdout (:meth:`AcpClient.run`, one task) and:

- correlates our requests with the agent's responses by id (:meth:`request` awaits the reply;
  :meth:`start_request` registers a callback that runs *in the reader*, so whatever it emits is
  ordered exactly as the frames arrived);
- serves the agent's requests concurrently, one task each: ``session/request_permission`` (becomes a
  ``PermissionRequest`` event and waits for :meth:`answer_permission` / :meth:`cancel_permissions`),
  ``fs/read_text_file`` and ``fs/write_text_file`` (confined to ``cwd``), anything else (terminals
  included: they are not offered) ``-32601``; ``$/cancel_request`` cancels one of them (answered
  ``-32800``);
- asks before it serves a capability: every ``fs/*`` request becomes a ``PermissionRequest``
  (``tool_name`` the method, ``kind`` ``read`` or ``edit``, ``summary`` the path relative to ``cwd``)
  that the session decides through the kernel's approval broker, i.e. the agent's ``permission``,
  ``allow`` and ``deny`` (or a person, while the session is ``input-required``); a refusal is answered
  :data:`PERMISSION_DENIED`. A write to a file named in the ``locations`` of an edit-kind tool call
  whose ``session/request_permission`` was allowed is served without asking twice (once per grant);
- turns ``session/update`` notifications into kernel events (:class:`~aegis_acp.codec.UpdateTranslator`)
  on the :attr:`events` channel; an unreadable line becomes an ``Unknown`` event, never an exception.

A reply to an id we never sent (nor gave up on, see :meth:`abandon`) is a **protocol error**: nothing
could ever end the request it was meant for, so :meth:`run` stops reading at once with
:attr:`protocol_error` saying why (the owner reports it as the agent's ``AgentError``). So is an agent
with more than :data:`MAX_SERVING` of its own requests in progress (each holds a task). A late reply to a
request we stopped waiting for is only an ``Unknown`` event.

When stdout ends (or after a protocol error), :meth:`run` fails every pending request with
:class:`ConnectionLost` and returns; the owner decides what the end means (``AgentError`` or a
deliberate close) and then calls :meth:`close_events`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
from aegis_kernel import AgentProcessError, AgentSubprocess, PermissionRequest, Unknown

from . import fs
from .codec import PermissionOption, UpdateTranslator, permission_options, pick_option
from .jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    PERMISSION_DENIED,
    REQUEST_CANCELLED,
    ErrorResponse,
    Invalid,
    Notification,
    Request,
    RequestId,
    Response,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    parse_line,
)

log = logging.getLogger("aegis.acp")

Reply = Response | ErrorResponse


class RpcError(Exception):
    """An error answer (from the agent to our request, or ours to the agent's request)."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


class ConnectionLost(Exception):
    """The agent's stdout ended (or its stdin broke) before the reply came."""


class _Pending:
    __slots__ = ("done", "reply", "callback")

    def __init__(self, callback: Callable[[Reply | ConnectionLost], None] | None = None) -> None:
        self.done = trio.Event()
        self.reply: Reply | ConnectionLost | None = None
        self.callback = callback


_ASK = [PermissionOption("allow", "Allow", "allow_once"), PermissionOption("reject", "Reject", "reject_once")]
_GRANTING_KINDS = ("edit", "delete", "move")  # an allowed tool call of these kinds may write its locations
_PREVIEW_CHARS = 4096  # of a write's content, shown to whoever decides
MAX_SERVING = 256  # the agent's requests in progress at once; more is a protocol error


class _Permission:
    __slots__ = ("options", "done", "outcome")

    def __init__(self, options: list[PermissionOption]) -> None:
        self.options = options
        self.done = trio.Event()
        self.outcome: dict[str, Any] = {"outcome": "cancelled"}


class AcpClient:
    """See the module docstring. ``cwd`` confines the fs methods, which never serve a path inside
    ``private`` (Aegis's state folder); set :attr:`session_id` once known."""

    def __init__(self, proc: AgentSubprocess, *, cwd: Path, translator: UpdateTranslator | None = None,
                 private: Path | None = None) -> None:
        self.proc = proc
        self.cwd = Path(cwd)
        self.private = private
        self.session_id: str | None = None
        self.translator = translator or UpdateTranslator()
        self._send_events, self.events = trio.open_memory_channel[Any](math.inf)
        self._next_id = 0
        self._pending: dict[RequestId, _Pending] = {}
        self._serving: dict[RequestId, trio.CancelScope] = {}
        self._permissions: dict[str, _Permission] = {}
        self._abandoned: set[RequestId] = set()  # ids we stopped waiting for (a late reply is harmless)
        self._granted_writes: set[Path] = set()  # files an allowed edit tool call named (one write each)
        self._eof = False
        self.protocol_error: str | None = None
        self.handlers: dict[str, Callable[[Request], Any]] = {
            "session/request_permission": self._on_permission,
            "fs/read_text_file": self._on_read,
            "fs/write_text_file": self._on_write,
        }

    # --- events -----------------------------------------------------------------------------------

    def emit(self, event: Any) -> None:
        """Queue one event for :attr:`events` (never blocks; dropped after :meth:`close_events`)."""
        try:
            self._send_events.send_nowait(event)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    def close_events(self) -> None:
        """End the :attr:`events` stream (idempotent)."""
        self._send_events.close()

    # --- outgoing -----------------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def _send(self, data: bytes) -> None:
        if self._eof:
            raise ConnectionLost("the agent's output has ended")
        try:
            await self.proc.send_line(data)
        except AgentProcessError as exc:
            raise ConnectionLost(str(exc)) from exc

    async def request(self, method: str, params: Any = None) -> Any:
        """Send a request and wait for its result. Raises :class:`RpcError` or :class:`ConnectionLost`."""
        rid = self._new_id()
        pending = self._pending[rid] = _Pending()
        try:
            await self._send(encode_request(rid, method, params))
            await pending.done.wait()
        finally:
            if self._pending.pop(rid, None) is not None:
                self._abandoned.add(rid)  # cancelled while waiting: its reply may still come
        reply = pending.reply
        if isinstance(reply, Response):
            return reply.result
        if isinstance(reply, ErrorResponse):
            raise RpcError(reply.code, reply.message, reply.data)
        raise reply if isinstance(reply, ConnectionLost) else ConnectionLost("no reply")

    async def start_request(self, method: str, params: Any, on_reply: Callable[[Reply | ConnectionLost], None]) -> int:
        """Send a request; ``on_reply`` runs in the reader task when the reply (or the end) comes.

        Returns once the request is written. Raises :class:`ConnectionLost` if it cannot be written
        (then ``on_reply`` is never called).
        """
        rid = self._new_id()
        self._pending[rid] = _Pending(on_reply)
        try:
            await self._send(encode_request(rid, method, params))
        except BaseException:
            self._pending.pop(rid, None)
            raise
        return rid

    def abandon(self, rid: RequestId) -> None:
        """Stop waiting for the reply to ``rid`` (its callback never runs; a late reply is ignored)."""
        if self._pending.pop(rid, None) is not None:
            self._abandoned.add(rid)

    async def notify(self, method: str, params: Any = None) -> None:
        await self._send(encode_notification(method, params))

    # --- reading ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read until the agent's stdout ends; serve its requests meanwhile. Returns at EOF."""
        try:
            async with trio.open_nursery() as nursery:
                async for line in self.proc.lines():
                    if line.strip():
                        self._on_line(line, nursery)
                        if self.protocol_error is not None:
                            break
                nursery.cancel_scope.cancel()
        finally:
            self._eof = True
            why = self.protocol_error or f"agent output ended ({self.proc.exit_description()})"
            self._fail_pending(ConnectionLost(why))

    def _on_line(self, line: bytes, nursery: trio.Nursery) -> None:
        msg = parse_line(line)
        kind = type(msg)
        if kind is Notification:
            if msg.method == "session/update":  # type: ignore[union-attr]
                for event in self.translator.update(msg.params, line):  # type: ignore[union-attr]
                    self.emit(event)
            elif msg.method == "$/cancel_request":  # type: ignore[union-attr]
                params = msg.params if isinstance(msg.params, dict) else {}  # type: ignore[union-attr]
                target = params.get("requestId")
                scope = self._serving.get(target) if isinstance(target, (int, str)) else None
                if scope is not None:
                    scope.cancel()
            # other notifications (extensions) are ignored, as JSON-RPC allows
        elif kind is Response or kind is ErrorResponse:
            self._on_reply(msg)  # type: ignore[arg-type]
        elif kind is Request:
            if len(self._serving) >= MAX_SERVING:  # each holds a task (and maybe waits for a person): bounded
                self.protocol_error = (
                    f"ACP protocol error: agent (pid {self.proc.pid}) has more than {MAX_SERVING} requests to "
                    "Aegis waiting at once; the agent was stopped")
                return
            # Registered now, so a $/cancel_request on the very next line finds it.
            scope = self._serving[msg.id] = trio.CancelScope()  # type: ignore[union-attr]
            nursery.start_soon(self._serve, msg, line, scope)
        else:
            assert isinstance(msg, Invalid)
            self.emit(Unknown(raw=msg.raw, reason=msg.reason))

    def _on_reply(self, reply: Reply) -> None:
        rid = reply.id
        pending = self._pending.pop(rid, None) if rid is not None else None
        if pending is not None:
            self._settle(pending, reply)
        elif rid is None or rid in self._abandoned:
            self._abandoned.discard(rid)  # type: ignore[arg-type]
            why = "late reply to a request we stopped waiting for" if rid is not None else "error reply without an id"
            self.emit(Unknown(raw=repr(reply)[:4096], reason=why))
        else:
            self.protocol_error = (
                f"ACP protocol error: agent (pid {self.proc.pid}) answered request id {rid!r}, which Aegis never "
                "sent; the reply meant for a pending request can never come, so the agent was stopped")

    def _settle(self, pending: _Pending, reply: Reply | ConnectionLost) -> None:
        pending.reply = reply
        if pending.callback is not None:
            try:
                pending.callback(reply)
            except Exception:  # noqa: BLE001 - a callback bug must not stop the reader
                log.exception("acp reply callback failed")
        pending.done.set()

    def _fail_pending(self, exc: ConnectionLost) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            self._settle(p, exc)
        self.cancel_permissions()

    # --- serving the agent's requests ---------------------------------------------------------------

    async def _serve(self, req: Request, raw: bytes, scope: trio.CancelScope) -> None:
        reply = b""
        try:
            with scope:
                try:
                    handler = self.handlers.get(req.method)
                    if handler is None:
                        raise RpcError(METHOD_NOT_FOUND, f"method not found: {req.method}")
                    result = await handler(req, raw)
                    reply = encode_result(req.id, result)
                except RpcError as exc:
                    reply = encode_error(req.id, exc.code, exc.message, exc.data)
                except Exception as exc:  # noqa: BLE001 - answered, logged
                    log.exception("acp: serving %s failed", req.method)
                    reply = encode_error(req.id, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        finally:
            if self._serving.get(req.id) is scope:
                del self._serving[req.id]
        if scope.cancelled_caught:
            if self._eof:
                return
            reply = encode_error(req.id, REQUEST_CANCELLED, "request cancelled")
        try:
            await self._send(reply)
        except ConnectionLost:
            pass

    def _check_session(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, "params must be an object")
        sid = params.get("sessionId")
        if self.session_id is not None and sid != self.session_id:
            raise RpcError(INVALID_PARAMS, f"unknown session {sid!r}")
        return params

    async def _on_permission(self, req: Request, raw: bytes) -> dict[str, Any]:
        self._check_session(req.params)
        key = str(req.id)
        events = self.translator.permission(key, req.params, raw)
        for event in events[:-1]:
            self.emit(event)
        event = events[-1]
        if not isinstance(event, PermissionRequest):
            self.emit(event)
            raise RpcError(INVALID_PARAMS, getattr(event, "reason", "invalid permission request"))
        options = permission_options(req.params)
        outcome = await self._ask(key, event, options)
        if event.kind in _GRANTING_KINDS and outcome.get("optionId") in {
                o.option_id for o in options if o.kind.startswith("allow")}:
            self._granted_writes.update(await trio.to_thread.run_sync(self._locations, req.params))
        return {"outcome": outcome}

    async def _ask(self, key: str, event: PermissionRequest, options: list[PermissionOption]) -> dict[str, Any]:
        """Emit ``event`` and wait for its answer (:meth:`answer_permission` / :meth:`cancel_permissions`)."""
        waiting = self._permissions[key] = _Permission(options)
        self.emit(event)
        try:
            await waiting.done.wait()
        finally:
            self._permissions.pop(key, None)
        return waiting.outcome

    def _locations(self, params: Any) -> set[Path]:
        """The files (inside ``cwd``) a permission request's tool call names in ``locations``."""
        call = params.get("toolCall") if isinstance(params, dict) else None
        found = set()
        for loc in (call.get("locations") if isinstance(call, dict) else None) or ():
            if isinstance(loc, dict) and isinstance(loc.get("path"), str):
                try:
                    found.add(fs.confine(self.cwd, loc["path"]))
                except fs.FsError:
                    pass
        return found

    async def _gate(self, req: Request, kind: str, target: Path, rel: str, raw_input: dict[str, Any]) -> None:
        """Serve ``req`` (``target``, ``rel`` to cwd) only if the approval policy allows it; else raise
        :data:`PERMISSION_DENIED`."""
        if kind == "edit" and target in self._granted_writes:
            self._granted_writes.discard(target)
            return
        event = PermissionRequest(request_id=str(req.id), tool_name=req.method, kind=kind, summary=rel,
                                  raw_input={"path": rel, **raw_input}, options=tuple(o.option_id for o in _ASK))
        outcome = await self._ask(str(req.id), event, _ASK)
        if outcome.get("optionId") != "allow":
            verb = "write" if kind == "edit" else "read"
            raise RpcError(PERMISSION_DENIED, f"permission denied: Aegis's approval policy for this agent does not "
                                              f"let it {verb} {rel} ({req.method})")

    def answer_permission(self, request_id: str, allow: bool, *, always: bool = False) -> bool:
        """Answer a pending permission request by the *kind* of option; False if it is not pending.

        When no option of a fitting kind exists the request is answered ``cancelled``.
        """
        waiting = self._permissions.get(request_id)
        if waiting is None or waiting.done.is_set():
            return False
        option = pick_option(waiting.options, allow, always)
        waiting.outcome = {"outcome": "selected", "optionId": option} if option else {"outcome": "cancelled"}
        waiting.done.set()
        return True

    def cancel_permissions(self) -> int:
        """Answer every pending permission request ``cancelled`` (what ``session/cancel`` requires)."""
        count = 0
        for waiting in list(self._permissions.values()):
            if not waiting.done.is_set():
                waiting.outcome = {"outcome": "cancelled"}
                waiting.done.set()
                count += 1
        return count

    @property
    def pending_permissions(self) -> list[str]:
        return [k for k, w in self._permissions.items() if not w.done.is_set()]

    async def _on_read(self, req: Request, raw: bytes) -> dict[str, Any]:
        params = self._check_session(req.params)
        line, limit = params.get("line"), params.get("limit")
        for name, value in (("line", line), ("limit", limit)):
            if value is not None and (type(value) is not int or value < 0):
                raise RpcError(INVALID_PARAMS, f"{name} must be a non-negative integer")
        try:
            target, rel = await trio.to_thread.run_sync(fs.locate, self.cwd, params.get("path"), self.private)
            await self._gate(req, "read", target, rel, {k: v for k, v in (("line", line), ("limit", limit)) if v})
            # the file that was approved (confined again: a symlink swapped meanwhile still cannot leave cwd)
            content = await trio.to_thread.run_sync(fs.read_text, self.cwd, str(target), line, limit)
        except fs.FsError as exc:
            raise RpcError(exc.code, exc.message) from None
        return {"content": content}

    async def _on_write(self, req: Request, raw: bytes) -> dict[str, Any]:
        params = self._check_session(req.params)
        content = params.get("content")
        if not isinstance(content, str):
            raise RpcError(INVALID_PARAMS, "content must be a string")
        try:
            target, rel = await trio.to_thread.run_sync(fs.locate, self.cwd, params.get("path"), self.private)
            preview = content if len(content) <= _PREVIEW_CHARS else content[:_PREVIEW_CHARS] + "…"
            await self._gate(req, "edit", target, rel, {"content": preview, "chars": len(content)})
            await trio.to_thread.run_sync(fs.write_text, self.cwd, str(target), content)
        except fs.FsError as exc:
            raise RpcError(exc.code, exc.message) from None
        return {}
