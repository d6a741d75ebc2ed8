"""The group runtime: groups, their members, broadcasts and the gathering of replies.

One :class:`GroupRuntime` per kernel (started by the groups service; ``kernel.service(GroupRuntime)``).

**Correlation.** A broadcast sends each member one envelope (``✉ from group:<g>/broadcast:<id>``)
and awaits, through the kernel's turn primitive (:class:`aegis_kernel.Turn` armed with that envelope's
id), the end of *the turn that delivered that envelope*: the member's reply is that turn's whole final
message. A turn that ran before the broadcast, or one that carried other envelopes only, never counts.
A turn that fails (or a member that fails or is closed first) is an error, not silence.

**Closing.** A broadcast is open until every member answered (``complete``), a gather's timeout or the
group's ``defaults.timeout`` passed (``timed_out``: the members still out are in ``timeouts``), a
``wait_any`` picked a winner (``complete``; the members still out get a *passive* ``✉ from group:<g>/cancel:<id>
· superseded by <winner>``: it never starts a turn by itself, and reaches the member with its next turn), the group was dissolved (``cancelled``), or Aegis restarted while it was
open (``interrupted``). One broadcast is open per group at a time. Replies after the close are ignored.
With ``callback=True`` the broadcaster receives the reduced result as one envelope when it closes; an
``interrupted`` broadcast always tells its broadcaster (once: the close is journaled first).

**Durability.** Each group is a journal ``.aegis/state/groups/<g>.jsonl`` (``aegis_kernel.Journal``):
``created``, ``joined``/``left`` (with a reason), ``broadcast``, ``reply`` (a preview), ``closed``,
``dissolved``. At start the journals are replayed (a journal with many closed broadcasts first moves
the older ones, whole, to ``groups/archive/``: :func:`plan_archive`); once the kernel's session restore is settled,
members whose session came back stay, the others leave with the reason ``lost at restart``, and an
open broadcast is closed ``interrupted``. A dissolved or renamed group's journal moves to
``groups/archive/``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

import attrs
import trio
from attrs import define, field

from aegis_kernel import (
    ArchivePlan,
    DeliveryError,
    Envelope,
    Journal,
    OperationError,
    SessionError,
    Turn,
    check_safe_name,
    new_id,
    utc_now,
)

from .config import GroupsConfig, groups_config
from .reducers import Reply, ReducerError, reduce

log = logging.getLogger("aegis.groups")

TOPIC = "groups"
PREVIEW = 200
RECENT = 10
ARCHIVE_AT = 50  # closed broadcasts in a journal before the older ones are archived (at start)
FIELDS = ("objective", "output_format", "tool_guidance", "boundaries")
_HEADINGS = {"objective": "Objective", "output_format": "Output format", "tool_guidance": "Tool guidance",
             "boundaries": "Boundaries"}


@define
class Member:
    handle: str
    profile: str | None = None
    spawned: bool = False  # spawned by the group: dissolve(close_members=True) closes it
    joined_at: str = ""


@define
class Broadcast:
    id: str
    group: str
    by: str  # the caller's tag
    broadcaster: str | None  # the calling agent's handle (callbacks go there)
    fields: dict[str, str]
    members: list[str]
    callback: bool = False
    reducer: str | None = None
    started_at: str = ""
    status: str = "open"  # open | complete | timed_out | cancelled | interrupted
    replies: dict[str, Reply] = field(factory=dict)  # ok answers, in arrival order
    errors: dict[str, str] = field(factory=dict)
    winner: str | None = None
    closed_at: str | None = None
    started: float = 0.0  # trio time of the send
    turns: dict[str, Turn] = field(factory=dict)
    closed: trio.Event = field(factory=trio.Event)
    changed: trio.Event = field(factory=trio.Event)
    scopes: list[trio.CancelScope] = field(factory=list)  # the members' awaits, cancelled at the close

    @property
    def open(self) -> bool:
        return self.status == "open"

    @property
    def outstanding(self) -> list[str]:
        return [h for h in self.members if h not in self.replies and h not in self.errors]

    def first_ok(self) -> str | None:
        return next(iter(self.replies), None)

    def info(self) -> dict[str, Any]:
        return {"broadcast_id": self.id, "status": self.status, "by": self.by, "started_at": self.started_at,
                "closed_at": self.closed_at, "members": list(self.members), "answered": list(self.replies),
                "errors": dict(self.errors), "outstanding": self.outstanding if self.open else [],
                "winner": self.winner, "callback": self.callback,
                "objective": self.fields.get("objective", "")[:PREVIEW]}


@define
class Group:
    name: str
    journal: Journal
    created_by: str = "user"
    created_at: str = ""
    members: dict[str, Member] = field(factory=dict)
    broadcasts: list[Broadcast] = field(factory=list)  # recent, oldest first; the last may be open
    left: list[dict[str, Any]] = field(factory=list)  # members removed, with the reason (recent)

    @property
    def current(self) -> Broadcast | None:
        return self.broadcasts[-1] if self.broadcasts and self.broadcasts[-1].open else None

    def record(self, event: str, **fields: Any) -> None:
        self.journal.append({"event": event, "group": self.name, "at": utc_now(), **fields})


def plan_archive(records: list[dict[str, Any]]) -> ArchivePlan | None:
    """Once a group's journal holds :data:`ARCHIVE_AT` closed broadcasts, every record of all but the
    newest :data:`RECENT` of them moves to ``groups/archive/`` (membership records stay)."""
    closed = [r["broadcast_id"] for r in records if r.get("event") == "closed" and isinstance(r.get("broadcast_id"), str)]
    if len(closed) < ARCHIVE_AT:
        return None
    moving = set(closed[:-RECENT])
    return ArchivePlan(archived=[r for r in records if r.get("broadcast_id") in moving],
                       kept=[r for r in records if r.get("broadcast_id") not in moving],
                       summary={"broadcasts": len(moving)})


def broadcast_body(fields: dict[str, str]) -> str:
    """The text each member receives under its ``✉ from group:<g>/broadcast:<id>`` header."""
    parts = [f"## {_HEADINGS[k]}\n{fields[k]}" for k in FIELDS if fields.get(k)]
    parts.append("Your whole final message of this turn is your answer to the group.")
    return "\n\n".join(parts)


def _usage(outcome: Any) -> dict[str, Any] | None:
    usage = outcome.usage
    return attrs.asdict(usage) if usage is not None and attrs.has(type(usage)) else None


def _fail(message: str, code: str = "refused", param: str | None = None, **data: Any) -> OperationError:
    return OperationError(message, code=code, param=param, **data)


class GroupRuntime:
    def __init__(self, kernel: Any, nursery: trio.Nursery) -> None:
        self.kernel = kernel
        self.nursery = nursery
        self.groups: dict[str, Group] = {}
        self.settled = trio.Event()  # the restart reconciliation is done
        self._listeners: list[Callable[[str], None]] = []
        self._sessions: dict[str, Any] = {}  # member handle → its Session (a renamed session keeps the object)

    # --- config ------------------------------------------------------------------------------------

    @property
    def config(self) -> GroupsConfig:
        return groups_config(self.kernel.config)

    # --- start: replay, then reconcile once the sessions are restored -------------------------------

    def _dir(self) -> Any:
        return self.kernel.state.path("groups")

    def _journal(self, name: str) -> Journal:
        # keyed by broadcast: an archive moves whole broadcasts and is named by the first and last one
        return Journal(self.kernel.state.path("groups", f"{name}.jsonl"), key="broadcast_id", fsync="always",
                       name=name, writer=self.kernel.state.writer)

    async def start(self) -> None:
        """Replay every group journal (file work in a worker thread)."""
        folder = self._dir()
        paths = await trio.to_thread.run_sync(
            lambda: sorted(folder.glob("*.jsonl")) if folder.is_dir() else [])
        for path in paths:
            journal = self._journal(path.stem)
            result = await trio.to_thread.run_sync(lambda: journal.archive(plan_archive, at=utc_now()))
            for problem in result.problems:
                log.warning("group journal %s: skipped %s", path, problem)
            group = self._fold(path.stem, journal, result.records)
            if group is not None:
                self.groups[group.name] = group

    def _fold(self, name: str, journal: Journal, records: list[dict[str, Any]]) -> Group | None:
        group: Group | None = None
        for rec in records:
            event = rec.get("event")
            if event == "created":
                group = Group(name=name, journal=journal, created_by=rec.get("by") or "user",
                              created_at=rec.get("at") or "")
            elif group is None:
                continue
            elif event == "joined" and isinstance(rec.get("handle"), str):
                group.members[rec["handle"]] = Member(rec["handle"], rec.get("profile"), bool(rec.get("spawned")),
                                                      rec.get("at") or "")
            elif event == "member_renamed" and rec.get("handle") in group.members:
                member = group.members[rec["handle"]]
                member.handle = str(rec.get("to"))
                group.members = {member.handle if h == rec["handle"] else h: m for h, m in group.members.items()}
            elif event == "left":
                if group.members.pop(str(rec.get("handle")), None) is not None:
                    group.left.append({"handle": rec.get("handle"), "reason": rec.get("reason"), "at": rec.get("at")})
            elif event == "broadcast" and isinstance(rec.get("broadcast_id"), str):
                group.broadcasts.append(Broadcast(
                    id=rec["broadcast_id"], group=name, by=rec.get("by") or "user", broadcaster=rec.get("broadcaster"),
                    fields=dict(rec.get("fields") or {}), members=list(rec.get("members") or []),
                    callback=bool(rec.get("callback")), reducer=rec.get("reducer"), started_at=rec.get("at") or ""))
            elif event == "reply":
                b = self._find(group, rec.get("broadcast_id"))
                if b is not None and isinstance(rec.get("handle"), str):
                    if rec.get("status") == "ok":
                        b.replies[rec["handle"]] = Reply(rec["handle"], rec.get("preview") or "", "ok",
                                                         rec.get("turn_s"), rec.get("usage"))
                    else:
                        b.errors[rec["handle"]] = rec.get("error") or rec.get("status") or "error"
            elif event == "closed":
                b = self._find(group, rec.get("broadcast_id"))
                if b is not None:
                    b.status, b.closed_at, b.winner = rec.get("status") or "complete", rec.get("at"), rec.get("winner")
                    b.closed.set()
            elif event == "dissolved":
                group = None
        if group is not None:
            del group.broadcasts[:-RECENT]
        return group

    @staticmethod
    def _find(group: Group, broadcast_id: Any) -> Broadcast | None:
        return next((b for b in group.broadcasts if b.id == broadcast_id), None)

    async def settle(self) -> None:
        """Once the kernel's session restore is settled: members whose session came back stay, the
        others leave (``lost at restart``); a broadcast left open is closed ``interrupted`` and its
        broadcaster told once."""
        await self.kernel.sessions.restored.wait()
        for group in list(self.groups.values()):
            for handle in list(group.members):
                session = self.kernel.sessions.get(handle)
                if session is None:
                    self._leave(group, handle, "lost at restart (its session was not restored)")
                else:
                    self._sessions[handle] = session
            current = group.current
            if current is not None:
                waiting = [h for h in current.outstanding if h in group.members]
                self._close(group, current, "interrupted", note="Aegis restarted while the broadcast was open")
                # a member whose broadcast had not reached it yet gets it again from its inbox: say it is moot
                self._cancel(group, current, waiting, status="interrupted by a restart of Aegis",
                             body=f"Broadcast {current.id} was interrupted by a restart of Aegis; no answer is needed.")
        self.settled.set()
        self._changed("")

    # --- observers -----------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """``listener(group_name)`` after every change (the TUI tab redraws on it)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self, name: str, **payload: Any) -> None:
        self.kernel.bus.publish(TOPIC, {"group": name, **payload})
        for listener in list(self._listeners):
            try:
                listener(name)
            except Exception:  # noqa: BLE001 - a view's bug must not stop the runtime
                log.exception("group listener failed")

    def on_session_closed(self, session: Any, reason: str) -> None:
        """A member closed for good leaves its groups (a kernel shutdown keeps it: it is restored)."""
        if reason == "shutdown":
            return
        self.follow_renames()
        for group in list(self.groups.values()):
            if session.handle in group.members:
                self._leave(group, session.handle, f"its session was closed ({reason})")

    # --- lookups -------------------------------------------------------------------------------------

    def follow_renames(self) -> None:
        """A member whose session was renamed (``aegis rename``) stays a member under its new handle
        (journaled ``renamed``); called before every lookup, so nothing sees a stale handle."""
        for group in self.groups.values():
            moved = {h: s.handle for h, s in self._sessions.items() if h in group.members and s.handle != h}
            if not moved:
                continue
            members = {}
            for handle, member in group.members.items():
                new = moved.get(handle, handle)
                member.handle = new
                members[new] = member
                if new != handle:
                    group.record("member_renamed", handle=handle, to=new)
                    self._sessions[new] = self._sessions.pop(handle)
            group.members = members
            self._changed(group.name)

    def group(self, name: str, param: str = "name") -> Group:
        self.follow_renames()
        group = self.groups.get(name)
        if group is None:
            known = ", ".join(sorted(self.groups)) or "none"
            raise _fail(f"no group {name!r} (groups: {known})", code="unknown_group", param=param)
        return group

    def _new_name(self, name: str, param: str = "name") -> None:
        problem = check_safe_name(name, "group")
        if problem is not None:
            raise _fail(problem, code="bad_argument", param=param)
        if name in self.groups:
            raise _fail(f"group {name!r} already exists", param=param)

    def member_of(self, handle: str) -> Group | None:
        """The group ``handle`` is a member of (a session is in one group at a time)."""
        self.follow_renames()
        return next((g for g in self.groups.values() if handle in g.members), None)

    # --- membership ----------------------------------------------------------------------------------

    def _create(self, name: str, by: str) -> Group:
        self._new_name(name)
        group = Group(name=name, journal=self._journal(name), created_by=by, created_at=utc_now())
        group.record("created", by=by)
        self.groups[name] = group
        return group

    def _join(self, group: Group, handle: str, *, profile: str | None, spawned: bool) -> None:
        member = Member(handle, profile, spawned, utc_now())
        group.members[handle] = member
        session = self.kernel.sessions.get(handle)
        if session is not None:
            self._sessions[handle] = session
        group.record("joined", handle=handle, profile=profile, spawned=spawned)

    def _leave(self, group: Group, handle: str, reason: str) -> None:
        if group.members.pop(handle, None) is None:
            return
        if self.member_of(handle) is None:
            self._sessions.pop(handle, None)
        group.record("left", handle=handle, reason=reason)
        group.left.append({"handle": handle, "reason": reason, "at": utc_now()})
        del group.left[:-RECENT]
        current = group.current
        if current is not None and handle in current.outstanding:
            self._answer(group, current, handle, None, error=f"left the group: {reason}")
        self._changed(group.name, member=handle, left=reason)

    async def spawn(self, name: str, profiles: list[str], *, caller: Any) -> dict[str, Any]:
        """Create group ``name`` with one new session per profile (spawned by the caller)."""
        self._new_name(name)
        if not profiles:
            raise _fail("give profiles (or a preset) to spawn the members from", code="bad_argument", param="profiles")
        agents = self.kernel.config.get("agents") or {}
        unknown = [p for p in profiles if p not in agents]
        if unknown:
            raise _fail(f"unknown agent profile {unknown[0]!r} (configured: {', '.join(sorted(agents)) or 'none'})",
                        code="bad_argument", param="profiles")
        group = self._create(name, caller.tag)
        members: list[str] = []
        for profile in profiles:
            try:
                session = await self.kernel.sessions.spawn(profile, spawned_by=caller.handle, sender=caller.tag)
            except (SessionError, ValueError) as exc:
                raise _fail(f"group {name!r}: could not spawn a {profile!r} member: {exc}; "
                            f"spawned so far: {', '.join(members) or 'none'}", param="profiles") from None
            self._join(group, session.handle, profile=profile, spawned=True)
            members.append(session.handle)
        self._changed(name, created=True)
        return {"name": name, "members": members}

    def add(self, name: str, handles: list[str], *, caller: Any) -> dict[str, Any]:
        """Add live sessions to ``name`` (created when missing). A session is in one group at a time."""
        for handle in handles:
            if self.kernel.sessions.get(handle) is None:
                raise _fail(f"no live session {handle!r} (see aegis_list_sessions)", code="unknown_handle",
                            param="handles")
            other = self.member_of(handle)
            if other is not None and other.name != name:
                raise _fail(f"{handle!r} is already a member of group {other.name!r} "
                            f"(aegis_group_move moves it)", param="handles")
        self.follow_renames()
        group = self.groups.get(name) or self._create(name, caller.tag)
        for handle in handles:
            if handle not in group.members:
                self._join(group, handle, profile=self.kernel.sessions.get(handle).profile_name, spawned=False)
        self._changed(name)
        return {"name": name, "members": list(group.members)}

    def remove(self, name: str, handles: list[str], *, caller: Any) -> dict[str, Any]:
        group = self.group(name)
        missing = [h for h in handles if h not in group.members]
        if missing:
            raise _fail(f"{missing[0]!r} is not a member of group {name!r}", code="unknown_handle", param="handles")
        for handle in handles:
            self._leave(group, handle, f"removed by {caller.tag}")
        return {"name": name, "members": list(group.members)}

    def move(self, handle: str, to: str, *, caller: Any) -> dict[str, Any]:
        source = self.member_of(handle)
        if source is None:
            raise _fail(f"{handle!r} is not a member of any group", code="unknown_handle", param="handle")
        target = self.group(to, "to")
        if target is source:
            return {"handle": handle, "from": source.name, "to": to}
        member = source.members[handle]
        self._leave(source, handle, f"moved to group {to!r} by {caller.tag}")
        self._join(target, handle, profile=member.profile, spawned=member.spawned)
        self._changed(to)
        return {"handle": handle, "from": source.name, "to": to}

    async def rename(self, name: str, new_name: str) -> dict[str, Any]:
        group = self.group(name)
        if group.current is not None:
            raise _fail(f"group {name!r} has an open broadcast ({group.current.id}); rename it once that closes",
                        param="name", broadcast_id=group.current.id)
        self._new_name(new_name, "new_name")
        old_path, new_journal = group.journal.path, self._journal(new_name)
        group.record("renamed", to=new_name)
        group.journal.close()
        records = await trio.to_thread.run_sync(lambda: group.journal.replay().records)
        from aegis_kernel import write_text_atomic

        text = "".join(json.dumps({**r, "group": new_name}, ensure_ascii=False) + "\n"
                       for r in records if r.get("event") != "renamed")
        await trio.to_thread.run_sync(write_text_atomic, new_journal.path, text)
        await trio.to_thread.run_sync(self._archive_file, old_path, name)
        group.name, group.journal = new_name, new_journal
        for b in group.broadcasts:
            b.group = new_name
        del self.groups[name]
        self.groups[new_name] = group
        self._changed(new_name, renamed_from=name)
        return {"name": new_name, "was": name}

    def _archive_file(self, path: Any, name: str) -> None:
        archive = path.parent / "archive"
        archive.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.rename(archive / f"{name}-{utc_now().replace(':', '')}-{new_id()[-6:]}.jsonl")

    async def dissolve(self, name: str, *, close_members: bool, caller: Any) -> dict[str, Any]:
        """Dissolve ``name``: an open broadcast is cancelled; with ``close_members`` the members the
        group spawned are closed (sessions added with ``aegis_group_add`` are left running)."""
        group = self.group(name)
        current = group.current
        if current is not None:
            self._close(group, current, "cancelled", note=f"the group was dissolved by {caller.tag}")
        closed = []
        spawned = [m.handle for m in group.members.values() if m.spawned] if close_members else []
        group.record("dissolved", by=caller.tag, closing=spawned)
        group.journal.close()
        del self.groups[name]
        await trio.to_thread.run_sync(self._archive_file, group.journal.path, name)
        for handle in spawned:
            session = self.kernel.sessions.get(handle)
            if session is not None:
                await session.close(f"group {name!r} dissolved by {caller.tag}")
                closed.append(handle)
        self._changed(name, dissolved=True)
        return {"name": name, "dissolved": True, "closed": closed,
                "left_running": [h for h in group.members if h not in closed]}

    # --- broadcasts ----------------------------------------------------------------------------------

    def broadcast(self, name: str, fields: dict[str, str], *, caller: Any, callback: bool,
                  reducer: str | None) -> dict[str, Any]:
        """Send one broadcast to every member of ``name`` (see the module docstring)."""
        group = self.group(name)
        current = group.current
        if current is not None:
            raise _fail(f"group {name!r} already has an open broadcast ({current.id}, by {current.by}); "
                        "wait for it (aegis_group_wait_all / wait_any) before broadcasting again",
                        code="busy", param="name", broadcast_id=current.id)
        if not group.members:
            raise _fail(f"group {name!r} has no members", param="name")
        if callback and caller.handle is None:
            raise _fail("callback=true sends the result to the calling agent; you are not one", param="callback")
        b = Broadcast(id=new_id(), group=name, by=caller.tag, broadcaster=caller.handle,
                      fields={k: v for k, v in fields.items() if v}, members=list(group.members),
                      callback=callback, reducer=reducer, started_at=utc_now(), started=trio.current_time())
        group.record("broadcast", broadcast_id=b.id, by=b.by, broadcaster=b.broadcaster, fields=b.fields,
                     members=b.members, callback=callback, reducer=reducer)
        group.broadcasts.append(b)
        del group.broadcasts[:-RECENT]
        body = broadcast_body(b.fields)
        sender = f"group:{name}/broadcast:{b.id}"
        for handle in b.members:
            session = self.kernel.sessions.get(handle)
            if session is None:
                self._answer(group, b, handle, None, error="its session is gone")
                continue
            envelope = Envelope.new(sender, body)
            turn = Turn(session, envelope.id)  # listening before the envelope can start its turn
            b.turns[handle] = turn
            try:
                self.kernel.deliver(handle, envelope)
            except (DeliveryError, SessionError) as exc:
                turn.stop_listening()
                self._answer(group, b, handle, None, error=f"could not deliver the broadcast: {exc}")
                continue
            self.nursery.start_soon(self._await_member, group, b, handle, turn)
        if b.open:
            self.nursery.start_soon(self._deadline, group, b, self.config.defaults.timeout)
        self._changed(name, broadcast_id=b.id)
        return {"broadcast_id": b.id, "members": list(b.members)}

    async def _await_member(self, group: Group, b: Broadcast, handle: str, turn: Turn) -> None:
        """Await the member's turn that delivered the broadcast; its outcome is the member's answer
        (any outcome but ``ok`` — failed, interrupted, closed — is an error)."""
        outcome = None
        if b.open:
            with trio.CancelScope() as scope:
                b.scopes.append(scope)
                outcome = await turn.wait()
        turn.stop_listening()
        if outcome is None or not b.open:
            return
        if outcome.status == "ok":
            self._answer(group, b, handle, Reply(handle, outcome.text, "ok",
                                                 round(trio.current_time() - b.started, 3), _usage(outcome)))
        else:
            self._answer(group, b, handle, None, error=outcome.error or f"the turn ended {outcome.status}",
                         status=outcome.status)

    async def _deadline(self, group: Group, b: Broadcast, timeout: float) -> None:
        with trio.move_on_after(timeout):
            await b.closed.wait()
        if b.open:
            self._close(group, b, "timed_out", note=f"groups.defaults.timeout ({timeout:g}s) passed")

    def _answer(self, group: Group, b: Broadcast, handle: str, reply: Reply | None, *, error: str | None = None,
                status: str = "error") -> None:
        if not b.open or handle in b.replies or handle in b.errors:
            return
        if reply is not None:
            b.replies[handle] = reply
            group.record("reply", broadcast_id=b.id, handle=handle, status="ok", preview=reply.text[:PREVIEW],
                         turn_s=reply.turn_s, usage=reply.usage)
        else:
            b.errors[handle] = error or "error"
            group.record("reply", broadcast_id=b.id, handle=handle, status=status, error=b.errors[handle])
        b.changed.set()
        b.changed = trio.Event()
        self._changed(group.name, broadcast_id=b.id, answered=handle)
        if not b.outstanding:
            self._close(group, b, "complete")

    def _close(self, group: Group, b: Broadcast, status: str, *, winner: str | None = None,
               note: str | None = None) -> None:
        """Close ``b`` (once): journal it (with the callback's envelope id), stop awaiting, tell the
        broadcaster when it asked for a callback or the broadcast was interrupted."""
        if not b.open:
            return
        b.status, b.winner, b.closed_at = status, winner, utc_now()
        envelope = None
        if b.broadcaster and (b.callback or status == "interrupted"):
            envelope = Envelope.new(f"group:{group.name}/broadcast:{b.id}",
                                    self._callback_body(b, note), status=status)
        group.record("closed", broadcast_id=b.id, status=status, winner=winner, note=note,
                     timeouts=b.outstanding, callback_envelope=envelope.id if envelope else None)
        for scope in b.scopes:
            scope.cancel()
        for turn in b.turns.values():
            turn.stop_listening()
        b.closed.set()
        b.changed.set()
        if envelope is not None:
            self._send_callback(group, b, envelope)
        self._changed(group.name, broadcast_id=b.id, closed=status)

    def _callback_body(self, b: Broadcast, note: str | None) -> str:
        result = self.result(b, b.reducer)
        lines = [f"broadcast {b.id} to group {b.group}: {b.status}" + (f" ({note})" if note else "")]
        reduced = result.get("reduced")
        if reduced is not None:
            lines.append(reduced if isinstance(reduced, str) else json.dumps(reduced, ensure_ascii=False, indent=1))
        if result["timeouts"]:
            lines.append(f"no answer from: {', '.join(result['timeouts'])}")
        for handle, error in result["errors"].items():
            lines.append(f"error from {handle}: {error}")
        if result.get("error"):
            lines.append(result["error"])
        return "\n\n".join(lines)

    def _send_callback(self, group: Group, b: Broadcast, envelope: Envelope) -> None:
        assert b.broadcaster is not None
        session = self.kernel.sessions.get(b.broadcaster)
        if session is None or session.state == "closed":
            log.warning("group %s: broadcaster %s of %s is gone; the result stays in the journal",
                        group.name, b.broadcaster, b.id)
            return
        try:  # a failed broadcaster holds it for its resume
            self.kernel.delivery.deliver(session, envelope, hold_if_failed=True)
        except (DeliveryError, SessionError) as exc:
            log.warning("group %s: callback of %s to %s not delivered: %s", group.name, b.id, b.broadcaster, exc)

    # --- gathering -----------------------------------------------------------------------------------

    def _target(self, group: Group, broadcast_id: str | None) -> Broadcast:
        if broadcast_id is not None:
            b = self._find(group, broadcast_id)
            if b is None:
                raise _fail(f"group {group.name!r} has no recent broadcast {broadcast_id!r}", code="unknown_broadcast",
                            param="broadcast_id")
            return b
        if not group.broadcasts:
            raise _fail(f"group {group.name!r} has no broadcast to wait for (aegis_group_broadcast first)",
                        param="name")
        return group.broadcasts[-1]

    async def wait_all(self, name: str, *, timeout: float | None, reducer: str | None,
                       broadcast_id: str | None = None) -> dict[str, Any]:
        """Wait until every member answered (or ``timeout`` s: the broadcast closes ``timed_out``)."""
        group = self.group(name)
        b = self._target(group, broadcast_id)
        with trio.move_on_after(math.inf if timeout is None else timeout):
            await b.closed.wait()
        if b.open:
            self._close(group, b, "timed_out", note=f"wait_all's timeout ({timeout:g}s) passed")
        return self.result(b, reducer or b.reducer)

    async def wait_any(self, name: str, *, timeout: float | None, cancel_losers: bool,
                       broadcast_id: str | None = None) -> dict[str, Any]:
        """Wait for the first answer; it wins and closes the broadcast; the members still out get a
        cancel envelope (``cancel_losers``)."""
        group = self.group(name)
        b = self._target(group, broadcast_id)
        with trio.move_on_after(math.inf if timeout is None else timeout):
            while b.open and b.first_ok() is None:
                await b.changed.wait()
        winner = b.winner or b.first_ok()
        if b.open:
            losers = b.outstanding
            if winner is None:
                self._close(group, b, "timed_out", note=f"wait_any's timeout ({timeout:g}s) passed")
            else:
                self._close(group, b, "complete", winner=winner)
                if cancel_losers:
                    self._cancel(group, b, losers, winner=winner, status=f"superseded by {winner}",
                                 body=f"Broadcast {b.id} is closed: {winner} answered first. "
                                      "Stop working on it; no answer is needed.")
        result = self.result(b, None)
        result["winner"] = winner
        result["reduced"] = b.replies[winner].text if winner in b.replies else None
        return result

    def _cancel(self, group: Group, b: Broadcast, losers: list[str], *, status: str, body: str,
                winner: str | None = None) -> None:
        """Tell ``losers`` (passively: it rides with their next turn) that ``b`` needs no answer."""
        for handle in losers:
            envelope = Envelope.new(f"group:{group.name}/cancel:{b.id}", body, status=status, passive=True)
            try:
                self.kernel.deliver(handle, envelope)
            except (DeliveryError, SessionError) as exc:
                log.info("group %s: cancel envelope to %s not delivered: %s", group.name, handle, exc)
        if losers:
            group.record("cancelled", broadcast_id=b.id, losers=losers, winner=winner, status=status)

    def result(self, b: Broadcast, reducer: str | None) -> dict[str, Any]:
        """The gather result: ``{broadcast_id, status, reduced, replies, timeouts, errors}`` (+ ``error``
        when the reducer is unknown or raised: ``reduced`` is None, the replies are still there)."""
        reducer = reducer or self.config.defaults.reducer
        out: dict[str, Any] = {"broadcast_id": b.id, "status": b.status, "reducer": reducer, "reduced": None,
                               "replies": {h: r.to_dict() for h, r in b.replies.items()},
                               "timeouts": b.outstanding, "errors": dict(b.errors)}
        try:
            out["reduced"] = reduce(self.kernel, reducer, list(b.replies.values()))
        except ReducerError as exc:
            out["error"] = str(exc)
        return out

    # --- views ---------------------------------------------------------------------------------------

    def group_info(self, group: Group, *, detail: bool = False) -> dict[str, Any]:
        self.follow_renames()
        members = []
        current = group.current
        for m in group.members.values():
            session = self.kernel.sessions.get(m.handle)
            entry = {"handle": m.handle, "profile": m.profile, "spawned": m.spawned,
                     "state": session.state if session is not None else "gone"}
            if current is not None:
                entry["answered"] = ("yes" if m.handle in current.replies else "error" if m.handle in current.errors
                                     else "no" if m.handle in current.members else "-")
            members.append(entry)
        out: dict[str, Any] = {"name": group.name, "created_by": group.created_by, "created_at": group.created_at,
                               "members": members, "current": current.info() if current else None}
        if detail:
            out["recent"] = [b.info() for b in reversed(group.broadcasts) if not b.open]
            out["left"] = list(group.left)
        return out
