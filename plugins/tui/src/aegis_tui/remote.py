"""The TUI attached to a running Aegis (``aegis serve`` or another TUI): mirror sessions over the control socket.

:class:`Remote` keeps two connections to the owner's control socket (:class:`aegis_kernel.client.AsyncRpcClient`):
one for calls (``aegis_send``, ``aegis_approve``, …) and one carrying the ``aegis_attach`` stream — a
snapshot of every session, then every bus item. Each session is mirrored by a :class:`MirrorSession`
that looks, to the TUI's widgets, like a kernel ``Session`` (handle, state, metrics, history, pending
approval, ``subscribe``): its events are folded with the kernel's own code (``events.event_from_dict``,
``metrics.SessionMetrics``), so transcripts, the status bar and tab dots read the same in both modes.

Everything here runs in the TUI's trio guest (the asyncio thread); nothing blocks. When the stream ends
(the owner stopped) :meth:`Remote.run` raises :class:`RemoteGone`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

log = logging.getLogger("aegis.tui.remote")


class SessionView(Protocol):
    """What the TUI's widgets read of a session — a kernel ``Session`` (owning) or a :class:`MirrorSession`
    (attached) — and all they read: commands never go through it (they are operations, see
    ``AegisApp.call_op``)."""

    handle: str
    profile_name: str
    provider: str
    profile: Any  # .model, .permission
    state: str
    error: str | None
    metrics: Any  # aegis_kernel.SessionMetrics
    history: list[Any]
    pending_permission: Any
    pending_count: int

    @property
    def busy(self) -> bool: ...

    def subscribe(self, listener: Callable[[Any, Any], None]) -> Callable[[], None]: ...


class RemoteGone(Exception):
    """The Aegis this TUI was attached to went away (or never answered)."""


class _Lagged(Exception):
    """The owner dropped stream items for us: the mirror must be rebuilt from a new snapshot."""


#: what a mirror's listeners get (instead of an event) when it was rebuilt from a new snapshot: redraw
#: everything from ``session.history``
RESYNCED = object()


def metrics_from_raw(raw: dict[str, Any] | None, provider: str, *, fresh: bool = False) -> Any:
    """A :class:`~aegis_kernel.metrics.SessionMetrics` rebuilt from ``mirror_record``'s ``metrics_raw``
    (times arrive as ages). ``fresh``: only the window and the start time (the live items fold the rest)."""
    from aegis_kernel import SessionMetrics, TokenUsage

    raw = dict(raw or {})
    now = time.monotonic()
    started = now - float(raw.get("started_at") or 0.0)
    if fresh:
        return SessionMetrics(provider=provider, context_size=int(raw.get("context_size") or 0), started_at=started)
    turn_ago = raw.get("turn_started_at")
    names = {a.name for a in SessionMetrics.__attrs_attrs__}
    fields = {k: v for k, v in raw.items() if k in names}
    for key in ("total", "turn_peak"):
        if isinstance(fields.get(key), dict):
            fields[key] = TokenUsage(**{k: int(v) for k, v in fields[key].items()
                                        if k in ("input", "output", "cache_read", "cache_creation")})
    fields["started_at"] = started
    fields["turn_started_at"] = None if turn_ago is None else now - float(turn_ago)
    fields["provider"] = provider
    try:
        return SessionMetrics(**fields)
    except (TypeError, ValueError):
        return SessionMetrics(provider=provider, started_at=started)


class MirrorSession:
    """A session of the attached Aegis, as the TUI's widgets read a kernel ``Session``."""

    restorable = True

    def __init__(self, record: dict[str, Any], *, fresh: bool = False) -> None:
        from aegis_kernel import event_from_dict

        self.handle: str = record["handle"]
        self.profile_name: str = record.get("agent") or ""
        self.provider: str = record.get("provider") or ""
        self.profile = SimpleNamespace(model=record.get("model"), permission=record.get("permission") or "",
                                       provider=self.provider)
        self.state: str = record.get("state") or "starting"
        self.error: str | None = record.get("error")
        self.spawned_by: str | None = record.get("spawned_by")
        self.pending_count: int = int(record.get("pending") or 0)
        self.metrics = metrics_from_raw(record.get("metrics_raw"), self.provider, fresh=fresh)
        self.history: list[Any] = [event_from_dict(d) for d in record.get("history") or () if isinstance(d, dict)]
        pending = record.get("pending_permission")
        self.pending_permission: Any = event_from_dict(pending) if isinstance(pending, dict) else None
        self.listeners: list[Callable[[Any, Any], None]] = []

    def __repr__(self) -> str:
        return f"<MirrorSession {self.handle} {self.provider} {self.state}>"

    @property
    def busy(self) -> bool:
        return self.state in ("working", "input-required")

    def subscribe(self, listener: Callable[[Any, Any], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

    def apply(self, event: Any) -> None:
        """Fold one live event as the kernel's session did, then tell the listeners."""
        from aegis_kernel import PermissionRequest, StateChanged, TurnResult

        if isinstance(event, StateChanged):
            if event.new == "working":
                self.metrics.begin_turn()
                self.pending_count = 0  # a turn takes everything that waited
            elif event.new == "error":
                self.error = event.reason or self.error
                if self.metrics.streaming:
                    self.metrics.end_turn(TurnResult(stop_reason="error", is_error=True, error=self.error))
            if event.new != "input-required":
                self.pending_permission = None
            self.state = event.new
        else:
            self.metrics.observe(event)
            if isinstance(event, PermissionRequest):
                self.pending_permission = event
            elif isinstance(event, TurnResult):
                self.pending_permission = None
        if not getattr(event, "partial", False):
            self.history.append(event)
        for listener in list(self.listeners):
            try:
                listener(self, event)
            except Exception:  # noqa: BLE001 - a broken listener must not stop the mirror
                log.exception("mirror listener failed")

    def reset(self, record: dict[str, Any]) -> None:
        """Take a newer snapshot of the same session (after a lag); listeners get :data:`RESYNCED`."""
        fresh = MirrorSession(record)
        for name in ("state", "error", "spawned_by", "pending_count", "metrics", "history", "pending_permission",
                     "profile"):
            setattr(self, name, getattr(fresh, name))
        for listener in list(self.listeners):
            try:
                listener(self, RESYNCED)
            except Exception:  # noqa: BLE001
                log.exception("mirror listener failed")

    def closed(self) -> None:
        """The owner closed it (``session.closed``); a state change is synthesised if none came."""
        if self.state != "closed":
            from aegis_kernel import StateChanged

            self.apply(StateChanged(old=self.state, new="closed"))


CONNECT_WAIT_S = 10.0  # how long attaching waits for a starting owner's control socket


class Remote:
    """The attached Aegis: mirrored sessions by handle, and calls to its operations (as the user)."""

    def __init__(self, socket: Path, *, buffer: int = 16384,
                 on_view_file: Callable[[str], None] | None = None) -> None:
        """``socket``: the owner's control socket (``aegis_kernel.client.socket_path``). ``buffer``: how
        many items the owner holds for this TUI before it drops some (then the
        mirror is rebuilt from a new snapshot: :attr:`resyncs` counts those). ``on_view_file(path)``:
        an agent asked (``aegis_view_file``) to show the user a project file."""
        self.socket = socket
        self.buffer = buffer
        self.on_view_file = on_view_file
        self.sessions: dict[str, MirrorSession] = {}
        self.owner: dict[str, Any] = {}
        self.resyncs = 0
        self._calls: Any = None
        self._started = False

    def __iter__(self) -> Any:
        return iter(list(self.sessions.values()))

    def get(self, handle: str) -> MirrorSession | None:
        return self.sessions.get(handle)

    async def call(self, operation: str, args: dict[str, Any] | None = None) -> Any:
        """Call ``operation`` on the owner as the user; raises ``RpcError`` (its message is for people)."""
        if self._calls is None:
            raise RemoteGone("not attached")
        return await self._calls.call(operation, args or {})

    async def run(self, *, task_status: Any = None) -> None:
        """Connect, mirror the snapshot, report started (with self), then follow the stream until it ends."""
        import trio

        from aegis_kernel.client import AsyncRpcClient, RpcError

        task_status = task_status or trio.TASK_STATUS_IGNORED
        await self._socket_up()
        try:
            async with AsyncRpcClient.open(self.socket, "the attached Aegis") as calls:
                self.owner = await calls.call("aegis_ping")
                self._calls = calls
                while True:
                    try:
                        await self._follow(task_status)
                        break  # the stream ended: the owner stopped
                    except _Lagged:
                        self.resyncs += 1
                        log.warning("the attached TUI fell behind the owner: rebuilding from a new snapshot")
        except (OSError, RpcError, StopAsyncIteration) as exc:
            raise RemoteGone(f"{exc}") from None
        finally:
            self._calls = None
        raise RemoteGone(f"aegis {self.owner.get('owner', '')} (pid {self.owner.get('pid', '?')}) stopped")

    async def _socket_up(self) -> None:
        """Wait (at most :data:`CONNECT_WAIT_S`) for the owner's socket to accept: an owner that has just
        taken the project opens its control socket a moment later."""
        import trio

        from aegis_kernel.client import ControlError, connect_path

        public = self.socket
        with trio.move_on_after(CONNECT_WAIT_S):
            while True:
                try:  # a long path is a symlink to the owner's private socket, made when it starts serving
                    self.socket = connect_path(public)
                    stream = await trio.open_unix_socket(str(self.socket))
                except (OSError, ControlError):
                    await trio.sleep(0.05)
                    continue
                await stream.aclose()
                return

    async def _follow(self, task_status: Any) -> None:
        """One ``aegis_attach`` stream on its own connection (a stream holds its connection)."""
        from aegis_kernel.client import AsyncRpcClient

        async with AsyncRpcClient.open(self.socket, "the attached Aegis") as events:
            stream = events.stream("aegis_attach", {"buffer": self.buffer})
            try:
                self.apply_batch(await stream.__anext__())
                if not self._started:
                    self._started = True
                    task_status.started(self)
                async for batch in stream:
                    self.apply_batch(batch)
            finally:
                await stream.aclose()

    def apply_batch(self, batch: list[dict[str, Any]]) -> None:
        """Fold a batch of ``aegis_attach`` items; raises :class:`_Lagged` at a ``lagged`` marker."""
        for item in batch:
            if "lagged" in item:
                raise _Lagged(item)
            try:
                self.apply_item(item)
            except Exception:  # noqa: BLE001 - one odd item never breaks the mirror
                log.exception("cannot mirror %r", item)

    def apply_item(self, item: dict[str, Any]) -> None:
        from aegis_kernel import event_from_dict

        topic, handle, data = item.get("topic"), item.get("session"), item.get("data")
        if topic == "snapshot":  # the first, or a new one after a lag: keep the mirrors the tabs hold
            records = {r["handle"]: r for r in data.get("sessions") or ()}
            for gone in [h for h in self.sessions if h not in records]:
                self.sessions.pop(gone).closed()
            for h, record in records.items():
                if h in self.sessions:
                    self.sessions[h].reset(record)
                else:
                    self.sessions[h] = MirrorSession(record)
        elif topic == "session.snapshot":
            if handle not in self.sessions:
                self.sessions[handle] = MirrorSession(data, fresh=True)
        elif topic == "session.event":
            session = self.sessions.get(handle)
            if session is not None and isinstance(data, dict):
                session.apply(event_from_dict(data))
        elif topic == "session.renamed" and isinstance(data, dict):
            session = self.sessions.pop(data.get("old"), None)
            if session is not None:
                session.handle = data.get("new") or session.handle
                self.sessions[session.handle] = session
        elif topic == "tui.view_file" and self.on_view_file is not None and isinstance(data, dict):
            self.on_view_file(str(data.get("path") or ""))
        elif topic == "session.closed":
            session = self.sessions.pop(handle, None)
            if session is not None:
                session.closed()
