"""The delivery channel: envelopes, per-handle ledgers, wake-or-buffer, receipts.

Everything that reaches an agent from outside arrives as an :class:`Envelope`. ``deliver`` writes the
envelope to ``.aegis/state/inboxes/<handle>.jsonl`` *before* acknowledging it, then hands it to the
session: an idle session is woken with it as a normal user turn, a working one buffers it and gets the
batch at its turn end (``interrupt=True`` interrupts first); a ``passive``
envelope never starts a turn by itself: it waits, and reaches the agent with the next turn something
else starts. Each envelope moves
``queued → delivered → read``; after a restart :meth:`Delivery.pending` returns the envelopes that were
never delivered, in order, so they reach the resumed session exactly once.

A session that failed (``error``) refuses envelopes, except those sent with ``hold_if_failed=True``
(callbacks: a queue result must not be lost because its producer crashed): those are persisted and
held for the handle, and reach the session once it is resumed (``aegis spawn --resume``, or a
restart), exactly once; they are dropped, and :meth:`Delivery.on_drop` listeners told, only when
someone closes the session.

A transient session (``restorable=False``: a queue worker) has no inbox ledger: nothing could ever
replay it (the session is not restored, and its pending envelopes would be dropped at its close),
and each ledger is a file to create, which costs more than the rest of a delivery.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import asdict, frozen

from .state import Ledger, LedgerWriteError, Problem, StateError

if TYPE_CHECKING:
    from .sessions import Session

log = logging.getLogger("aegis.delivery")


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_last_id = 0


def new_id() -> str:
    """Time-ordered unique id: 12 hex digits of µs time + 6 random hex digits."""
    global _last_id
    now = max(int(time.time() * 1_000_000), _last_id + 1)
    _last_id = now
    return f"{now:012x}{os.urandom(3).hex()}"


@frozen
class Envelope:
    sender: str
    body: str
    id: str = ""
    ts: str = ""
    task_id: str | None = None
    status: str | None = None
    interrupt: bool = False
    passive: bool = False  # never wakes the recipient: it rides along with its next turn (a group's cancel note)

    @classmethod
    def new(cls, sender: str, body: str, **kw: Any) -> Envelope:
        return cls(sender=sender, body=body, id=new_id(), ts=utc_now(), **kw)

    def header(self) -> str:
        parts = [f"✉ from {self.sender}"]
        if self.task_id:
            parts.append(f"task#{self.task_id}")
        if self.status:
            parts.append(self.status)
        parts.append(self.ts)
        return " · ".join(parts)

    def render(self) -> str:
        """The text the agent receives; the user's own input carries no header."""
        return self.body if self.sender == "user" else f"{self.header()}\n{self.body}"


_ENVELOPE_TYPES: dict[str, tuple[type, ...]] = {
    "sender": (str,), "body": (str,), "id": (str,), "ts": (str,), "task_id": (str, type(None)),
    "status": (str, type(None)), "interrupt": (bool,), "passive": (bool,),
}


def envelope_from_dict(data: Any) -> tuple[Envelope | None, str]:
    """``(envelope, note)`` from a persisted envelope, or ``(None, why)`` when it is not one: ``sender``,
    ``body`` and ``id`` are required strings and every known key must have its type. Unknown keys (a
    newer writer's) are left out and named in ``note`` ("" when there is nothing to say)."""
    if not isinstance(data, dict):
        return None, f"'envelope' is not an object ({type(data).__name__})"
    for key in ("sender", "body", "id"):
        if not isinstance(data.get(key), str) or (key == "id" and not data[key]):
            return None, f"'{key}' must be a non-empty string" if key == "id" else f"'{key}' must be a string"
    for key, types in _ENVELOPE_TYPES.items():
        if key in data and not isinstance(data[key], types):
            return None, f"'{key}' has the wrong type ({type(data[key]).__name__})"
    unknown = sorted(k for k in data if k not in _ENVELOPE_TYPES)
    env = Envelope(**{k: v for k, v in data.items() if k in _ENVELOPE_TYPES})
    return env, f"envelope {env.id}: ignored unknown keys {', '.join(map(repr, unknown))}" if unknown else ""


def render_batch(envelopes: list[Envelope]) -> str:
    return "\n\n".join(e.render() for e in envelopes)


@frozen
class Receipt:
    envelope_id: str
    handle: str
    state: str  # queued | delivered | held (for a failed session, until it is resumed)
    position: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeliveryError(Exception):
    pass


class Delivery:
    """Ledgers per handle and the wake-or-buffer rule. One per kernel."""

    def __init__(self, inbox_dir: Path, *, writer: Any = None) -> None:
        self.inbox_dir = inbox_dir
        self._writer = writer  # a StateWriter: the ledgers' fsyncs run on its thread, not the event loop
        self._ledgers: dict[str, Ledger] = {}
        self._drop_listeners: list[Callable[[str, Envelope], object]] = []

    def _ledger(self, handle: str) -> Ledger:
        ledger = self._ledgers.get(handle)
        if ledger is None:
            self.inbox_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, as all state
            # batch fsync: a record is written (and survives a killed process) before it is acknowledged;
            # only a power loss can cost the last second
            ledger = self._ledgers[handle] = Ledger(self.inbox_dir / f"{handle}.jsonl", fsync="batch",
                                                    writer=self._writer)
        return ledger

    def record(self, session: Session, op: str, envelope_id: str) -> None:
        """Note an envelope's progress (``delivered``, ``read``) in ``session``'s inbox ledger, if it keeps one."""
        if session.restorable:
            self._note(session.handle, op, envelope_id)

    def _note(self, handle: str, op: str, envelope_id: str) -> None:
        self._ledger(handle).append({"op": op, "id": envelope_id, "ts": utc_now()})

    def deliver(self, session: Session, envelope: Envelope, *, hold_if_failed: bool = False) -> Receipt:
        """Persist, then hand to ``session``. Returns a receipt; never loses an accepted envelope.

        ``hold_if_failed``: a restorable session in ``error`` takes the envelope too (receipt state
        ``held``): it waits for the session's resume, or is dropped when the session is closed.
        Raises :class:`DeliveryError` when the session is closed or (otherwise) failed, or when the
        envelope could not be persisted (``"not accepted: disk full writing <file>: …"``): nothing was
        accepted then."""
        if session.state == "closed":
            raise DeliveryError(f"session '{session.handle}' is closed")
        held = session.state == "error"
        if held and not (hold_if_failed and session.restorable):
            raise DeliveryError(f"session '{session.handle}' has failed ({(session.error or 'error').splitlines()[0]}); "
                                f"close it, or bring it back with: aegis spawn --resume {session.handle}")
        if session.restorable:
            try:
                self.hold(session.handle, envelope)
            except LedgerWriteError as exc:  # not persisted, so not accepted: the sender must know
                raise DeliveryError(f"not accepted: {exc}") from exc
        position = session.enqueue(envelope)  # a failed session only buffers it, for its resume
        return Receipt(envelope.id, session.handle, "held" if held else "queued" if position else "delivered",
                       position)

    def hold(self, handle: str, envelope: Envelope) -> None:
        """Persist ``envelope`` for a handle that is not live now; it is delivered when that session is
        restored (see :meth:`pending`)."""
        self._ledger(handle).append({"op": "queued", "envelope": asdict(envelope)})

    def drop(self, session: Session, envelopes: list[Envelope]) -> None:
        """Record envelopes that will never be delivered (their session was closed), tell the
        :meth:`on_drop` listeners, and close the session's ledger."""
        if session.restorable:
            self._drop(session.handle, [e.id for e in envelopes])
        for envelope in envelopes:
            for listener in list(self._drop_listeners):
                try:
                    listener(session.handle, envelope)
                except Exception:  # noqa: BLE001 - a listener's bug must not stop a close
                    log.exception("envelope drop listener %r failed", listener)

    def on_drop(self, listener: Callable[[str, Envelope], object]) -> Callable[[], None]:
        """Call ``listener(handle, envelope)`` for each envelope dropped because its session was closed
        before it got it (e.g. a queue notes a callback that will never arrive). Returns the function
        that removes the listener."""
        self._drop_listeners.append(listener)
        return lambda: self._drop_listeners.remove(listener) if listener in self._drop_listeners else None

    def _drop(self, handle: str, envelope_ids: list[str]) -> None:
        for envelope_id in envelope_ids:
            self._note(handle, "dropped", envelope_id)
        ledger = self._ledgers.pop(handle, None)
        if ledger is not None:
            ledger.close()

    def pending(self, handle: str) -> list[Envelope]:
        """Envelopes queued for ``handle`` and never delivered (replayed from its ledger).

        Each record is checked at this edge: a torn or malformed one is skipped with a warning naming
        ``file:line`` and costs only itself; an envelope with keys this version does not know keeps its
        known fields. An unreadable ledger (e.g. a folder in its place) raises :class:`DeliveryError`."""
        path = self.inbox_dir / f"{handle}.jsonl"
        queued: dict[str, Envelope] = {}
        try:
            items = list(Ledger.iter_numbered(path))
        except StateError as exc:
            raise DeliveryError(f"cannot read the inbox of '{handle}': {exc}") from exc
        for no, rec in items:
            if isinstance(rec, Problem):
                log.warning("%s:%d: skipped: %s", path, no, rec.reason)
                continue
            op = rec.get("op")
            if op == "queued":
                env, why = envelope_from_dict(rec.get("envelope"))
                if env is None:
                    log.warning("%s:%d: skipped a queued envelope: %s", path, no, why)
                    continue
                if why:
                    log.warning("%s:%d: %s", path, no, why)
                queued[env.id] = env
            elif op in ("delivered", "dropped"):
                if not isinstance(rec.get("id"), str):
                    log.warning("%s:%d: skipped a %r record without a string 'id'", path, no, op)
                    continue
                queued.pop(rec["id"], None)
        return list(queued.values())

    def rename(self, old: str, new: str) -> None:
        ledger = self._ledgers.pop(old, None)
        if ledger is not None:
            ledger.close()
        src, dst = self.inbox_dir / f"{old}.jsonl", self.inbox_dir / f"{new}.jsonl"
        if src.exists() and not dst.exists():
            src.rename(dst)
        elif src.exists():  # the new handle was used before: carry the undelivered envelopes over
            moved = self.pending(old)
            for envelope in moved:
                self.hold(new, envelope)
            self._drop(old, [e.id for e in moved])

    def close(self) -> None:
        for ledger in self._ledgers.values():
            ledger.close()
        self._ledgers.clear()
