"""The kernel's own operations: what a person does to sessions, as operations every transport carries.

The control socket, the TUI, ``aegis call`` and (later) the remote plane and Telegram call these;
none of them implements the action itself. Agents have their own verbs (``aegis_handoff``,
``aegis_spawn``, ``aegis_close`` in aegis-inbox) and never reach these: answering approvals,
renaming, resuming, stopping and reading whole transcripts are for people (declared through
``callers``; the registry enforces it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .delivery import Envelope
from .operations import CallContext, OperationError, params

#: the principals that act for the person who owns the project
PEOPLE = ("user", "telegram")
_STR = {"type": "string", "minLength": 1}
_HANDLE = {"type": "string", "minLength": 1, "description": "the session's handle"}


def register_session_operations(register: Any) -> None:
    """Register the kernel's session operations (called by the kernel's builtin plugin)."""
    ops = "aegis_kernel.session_ops:"
    register("aegis_ping", ops + "ping",
             "Who owns this project: pid, project folder, MCP endpoint base, and a refused live config edit if any.",
             params(), callers=(*PEOPLE, "peer"))
    register("aegis_sessions", ops + "sessions", "Every session with its state, metrics and transcript path.",
             params(), callers=(*PEOPLE, "peer"))
    register("aegis_send", ops + "send",
             "Send text to a session as the caller; an idle session is woken, a busy one gets it at its turn end "
             "unless interrupt=true.",
             params(("handle", "text"), handle=_HANDLE, text=_STR, interrupt={"type": "boolean", "default": False}),
             callers=(*PEOPLE, "peer"))
    register("aegis_interrupt", ops + "interrupt", "Interrupt a session's current turn.",
             params(("handle",), handle=_HANDLE), callers=(*PEOPLE, "peer"))
    register("aegis_approve", ops + "approve",
             "Allow a session's pending permission request (always=true: for the rest of the session).",
             params(("handle",), handle=_HANDLE, always={"type": "boolean", "default": False}), callers=PEOPLE)
    register("aegis_deny", ops + "deny", "Deny a session's pending permission request.",
             params(("handle",), handle=_HANDLE), callers=PEOPLE)
    register("aegis_rename", ops + "rename", "Give a session a new handle.",
             params(("handle", "new_handle"), handle=_HANDLE, new_handle=_STR), callers=("user",))
    register("aegis_resume", ops + "resume",
             "Start a saved session again in its agent's own conversation (driver session id).",
             params(("handle",), handle=_HANDLE, new_handle={"type": ["string", "null"], "default": None},
                    prompt={"type": ["string", "null"], "default": None}),
             callers=("user",))
    register("aegis_transcript", ops + "transcript",
             "A page of a session's transcript events, oldest first: offset/limit, and the total.",
             params(("handle",), handle=_HANDLE, offset={"type": "integer", "minimum": 0, "default": 0},
                    limit={"type": "integer", "minimum": 1, "maximum": 5000, "default": 500}),
             callers=(*PEOPLE, "peer"))
    register("aegis_stop", ops + "stop", "Stop this Aegis: close every agent and exit.", params(), callers=("user",))
    register("aegis_subscribe", ops + "subscribe",
             "Stream kernel events (session events and states, envelopes, queue changes, plugins' topics), "
             "filtered by topic and session. history=true with a session first replays its transcript; "
             "until_closed=true ends the stream when that session closes. A reader that falls behind gets "
             "{'lagged': n, ...} and re-reads what it missed with aegis_transcript.",
             params(topics={"type": ["array", "null"], "items": {"type": "string"}, "default": None},
                    session={"type": ["string", "null"], "default": None},
                    history={"type": "boolean", "default": False},
                    until_closed={"type": "boolean", "default": False},
                    buffer={"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 4096}),
             callers=(*PEOPLE, "peer"), stream=True)
    register("aegis_attach", ops + "attach",
             "What an interface attached to this Aegis needs to mirror it: first a 'snapshot' item (every "
             "session's info, raw metrics, pending approval and transcript), then every bus item; a session "
             "that starts later gets a 'session.snapshot' item just before its first item. Nothing is "
             "lost or doubled between a snapshot and the live items that follow it.",
             params(buffer={"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 16384}),
             callers=("user",), stream=True)


async def ping(ctx: CallContext) -> dict[str, Any]:
    import os

    kernel = ctx.kernel
    error = getattr(kernel, "config_error", None)  # a refused live config edit (see config_watch)
    return {"pid": os.getpid(), "project": str(kernel.project_dir), "mcp": getattr(kernel, "mcp_base_url", None),
            "owner": "serve" if kernel.headless else "tui", "config_error": str(error) if error is not None else None}


async def sessions(ctx: CallContext) -> list[dict[str, Any]]:
    return [s.info() for s in ctx.kernel.sessions]


async def send(ctx: CallContext, handle: str, text: str, interrupt: bool = False) -> dict[str, Any]:
    receipt = ctx.kernel.deliver(handle, Envelope.new(ctx.caller.tag, text, interrupt=interrupt))
    return receipt.to_dict()


async def interrupt(ctx: CallContext, handle: str) -> dict[str, Any]:
    ctx.kernel.sessions.require(handle).interrupt()
    return {"interrupted": handle}


async def approve(ctx: CallContext, handle: str, always: bool = False) -> dict[str, Any]:
    return await _answer(ctx, handle, True, always)


async def deny(ctx: CallContext, handle: str) -> dict[str, Any]:
    return await _answer(ctx, handle, False, False)


async def _answer(ctx: CallContext, handle: str, allow: bool, always: bool) -> dict[str, Any]:
    session = ctx.kernel.sessions.require(handle)
    await session.answer_permission(allow, always=always)
    return {"handle": session.handle, "allowed": allow}


async def rename(ctx: CallContext, handle: str, new_handle: str) -> dict[str, Any]:
    session = ctx.kernel.sessions.rename(handle, new_handle)
    ctx.kernel.bus.publish("session.renamed", {"old": handle, "new": session.handle}, session.handle)
    return {"handle": session.handle, "was": handle}


async def resume(ctx: CallContext, handle: str, new_handle: str | None = None,
                 prompt: str | None = None) -> dict[str, Any]:
    manager = ctx.kernel.sessions
    saved = {r["handle"]: r for r in manager.saved_all()}
    record = saved.get(handle)
    if record is None:
        known = ", ".join(sorted(saved)) or "none"
        raise OperationError(f"no saved session '{handle}' to resume (saved: {known})", code="not_found",
                             param="handle")
    session = await manager.spawn(record.get("agent"), handle=new_handle or handle,
                                  resume_id=record.get("driver_session_id"), log_id=record.get("log_id"),
                                  prompt=prompt)
    return session.info()


async def transcript(ctx: CallContext, handle: str, offset: int = 0, limit: int = 500) -> dict[str, Any]:
    from .events import event_to_dict

    history = list(ctx.kernel.sessions.require(handle).history)
    page = history[offset:offset + limit]
    end = offset + len(page)
    return {"handle": handle, "offset": offset, "total": len(history), "events": [event_to_dict(e) for e in page],
            "next_offset": end if end < len(history) else None}


async def stop(ctx: CallContext) -> dict[str, Any]:
    if not ctx.kernel.request_stop():
        raise OperationError("nothing owns this kernel that could stop it", code="unavailable")
    return {"stopping": True}


async def subscribe(ctx: CallContext, topics: list[str] | None = None, session: str | None = None,
                    history: bool = False, until_closed: bool = False,
                    buffer: int = 4096) -> AsyncIterator[list[dict[str, Any]]]:
    """Batches of bus items as dicts (``{"lagged": n, ...}`` markers included), oldest first."""
    from .events import event_to_dict

    kernel = ctx.kernel
    watched = kernel.sessions.require(session) if session is not None and (history or until_closed) else None
    if until_closed and topics is not None:
        topics = [*topics, "session.closed"]
    # subscribe and copy the history in the same step (no checkpoint between): nothing is lost or doubled
    with kernel.bus.subscribe(topics, session, buffer) as sub:
        if history and watched is not None:
            past = list(watched.history)
            for start in range(0, len(past), 500):
                yield [{"seq": None, "topic": "session.event", "session": session, "history": True,
                        "data": event_to_dict(e)} for e in past[start:start + 500]]
        if until_closed and watched is not None and watched.state == "closed":
            return
        while batch := await sub.next_batch():
            out = [item.to_dict() for item in batch]
            yield out
            if until_closed and any(item.get("topic") == "session.closed" for item in out):
                return


# --- attaching an interface (the TUI attached to a serve) ------------------------------------------------


def mirror_record(session: Any, history: list[Any] | None = None) -> dict[str, Any]:
    """One session as an attached interface rebuilds it: :meth:`Session.info`, the metrics' raw fields
    (``metrics_raw``, times as ages in seconds), the pending approval and the transcript ``history``
    (events as ``event_to_dict`` gives them; default: the whole history)."""
    import time

    import attrs

    from .events import event_to_dict

    m = session.metrics
    raw = attrs.asdict(m, recurse=True)
    now = time.monotonic()
    raw["started_at"] = now - m.started_at
    raw["turn_started_at"] = None if m.turn_started_at is None else now - m.turn_started_at
    record: dict[str, Any] = session.info()
    record["metrics_raw"] = raw
    pending = session.pending_permission
    record["pending_permission"] = event_to_dict(pending) if pending is not None else None
    record["history"] = [event_to_dict(e) for e in (session.history if history is None else history)]
    return record


async def attach(ctx: CallContext, buffer: int = 16384) -> AsyncIterator[list[dict[str, Any]]]:
    """``[{"topic": "snapshot", "data": {"sessions": [...]}}]`` first, then batches of bus items.

    Consistency: the subscription opens and the snapshot is read in one step (no checkpoint), so the
    live items are exactly what happened after it. A session the snapshot did not have gets a
    ``session.snapshot`` item just before its first item (its first state change: ``ready``, or
    ``error`` when its agent never started). Its history is read when the batch holding that item is
    drained — in the same step — minus the events of that batch that follow, which the client folds
    itself (a session's events reach the bus only from its start on, each one also in its history).

    While the stream lasts, agents' ``aegis_view_file`` reaches the attached interface: a
    ``tui.view_file`` item (``{"path"}``, relative to the project) on this stream."""
    kernel = ctx.kernel
    withdraw = kernel.provide(AttachedViewer(kernel))
    try:
        with kernel.bus.subscribe(None, None, buffer) as sub:
            sessions = list(kernel.sessions)
            announced = {s.handle for s in sessions}
            yield [{"seq": kernel.bus.seq, "topic": "snapshot", "session": None,
                    "data": {"sessions": [mirror_record(s) for s in sessions]}}]
            while batch := await sub.next_batch():
                yield _with_snapshots(kernel, [item.to_dict() for item in batch], announced)
    finally:
        withdraw()


def _with_snapshots(kernel: Any, out: list[dict[str, Any]], announced: set[str]) -> list[dict[str, Any]]:
    """A drained batch with a ``session.snapshot`` before the first item of each session not yet
    ``announced`` on this stream (see :func:`attach`)."""
    enriched: list[dict[str, Any]] = []
    for i, item in enumerate(out):
        handle = item.get("session")
        topic = str(item.get("topic") or "")
        if topic == "session.renamed":
            announced.discard(str((item.get("data") or {}).get("old")))
            announced.add(str(handle))
        elif topic == "session.closed":
            announced.discard(str(handle))  # a later session may reuse the handle (a resume)
        elif handle is not None and handle not in announced and topic.startswith("session."):
            session = kernel.sessions.get(handle)
            if session is not None:
                announced.add(handle)
                later = sum(1 for x in out[i + 1:] if x.get("session") == handle
                            and x.get("topic") == "session.event" and not x["data"].get("partial"))
                history = session.history[:max(0, len(session.history) - later)]
                enriched.append({"seq": item["seq"], "topic": "session.snapshot", "session": handle,
                                 "data": mirror_record(session, history)})
        enriched.append(item)
    return enriched


def viewable(project: Path, path: str) -> dict[str, Any]:
    """Whether an agent may have ``path`` shown to the user: a file inside ``project`` (blocking: stats).
    ``{"status": "opened", "path": <relative>}``, or ``refused`` / ``not_found`` with a message."""
    root = project.resolve()
    target = (root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    if not target.is_relative_to(root):
        return {"status": "refused", "message": f"{path} is outside the project ({root})"}
    if not target.is_file():
        return {"status": "not_found", "message": f"no such file: {path}"}
    return {"status": "opened", "path": str(target.relative_to(root))}


class AttachedViewer:
    """The :class:`~aegis_kernel.services.FileViewer` of the interfaces attached through ``aegis_attach``:
    a viewable file is published as ``tui.view_file`` for them to open."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    async def view_file(self, path: str) -> dict[str, Any]:
        import trio

        result = await trio.to_thread.run_sync(viewable, self.kernel.project_dir, path)
        if result["status"] == "opened":
            self.kernel.bus.publish("tui.view_file", {"path": result["path"]})
        return result
