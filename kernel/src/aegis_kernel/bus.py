"""The event bus: one stream of what happens in the kernel, for every interface that watches it.

Topics the kernel publishes (plugins publish their own with :meth:`EventBus.publish`):

- ``session.event`` — a session's driver/kernel event (``data``: the event as ``event_to_dict``
  gives it; streaming previews have ``"partial": true``);
- ``session.state`` — ``{"old", "new"}``; ``session.started`` / ``session.closed`` (``{"reason"}``);
- ``envelope`` — an envelope handed to a session (``{"id", "from", "text"}``).

Publishing is synchronous, never blocks and costs almost nothing when nobody listens. Every
subscriber has a **bounded** buffer: when it falls behind, its oldest items are dropped and the next
thing it reads is a :class:`Lagged` marker saying how many it missed and the sequence numbers to
re-read from the journals (a session's transcript, ``aegis_transcript``). Memory stays flat whatever
a subscriber does. Items are serialised only when a subscriber reads them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import trio
from attrs import frozen

if TYPE_CHECKING:
    from .sessions import Session

DEFAULT_BUFFER = 4096


@frozen
class BusEvent:
    """One published item. ``payload`` is JSON-able, or an event record turned into one on read."""

    seq: int
    topic: str
    session: str | None
    payload: Any

    def to_dict(self) -> dict[str, Any]:
        data = self.payload
        if not isinstance(data, (dict, list, str, int, float, bool, type(None))):
            from .events import event_to_dict

            data = event_to_dict(data)
        return {"seq": self.seq, "topic": self.topic, "session": self.session, "data": data}


@frozen
class Lagged:
    """The subscriber fell behind: ``missed`` items (``first_seq``..``last_seq``) were dropped for it."""

    missed: int
    first_seq: int
    last_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"lagged": self.missed, "first_seq": self.first_seq, "last_seq": self.last_seq}


class Subscription:
    """One subscriber's bounded view of the bus. Use as a context manager (it unsubscribes on exit)."""

    def __init__(self, bus: EventBus, topics: frozenset[str] | None, session: str | None, buffer: int) -> None:
        self.bus = bus
        self.topics = topics
        self.session = session
        self.buffer = buffer
        self.closed = False
        self._items: deque[BusEvent] = deque()
        self._missed = self._missed_first = self._missed_last = 0
        self._wakeup = trio.Event()

    def wants(self, topic: str, session: str | None) -> bool:
        if self.session is not None and session != self.session:
            return False
        return self.topics is None or topic in self.topics or topic.split(".", 1)[0] in self.topics

    def offer(self, item: BusEvent) -> None:
        if len(self._items) >= self.buffer:
            dropped = self._items.popleft()
            if not self._missed:
                self._missed_first = dropped.seq
            self._missed += 1
            self._missed_last = dropped.seq
        self._items.append(item)
        self._wakeup.set()

    def drain(self) -> list[BusEvent | Lagged]:
        """Everything buffered now (a :class:`Lagged` marker first when items were dropped)."""
        out: list[BusEvent | Lagged] = []
        if self._missed:
            out.append(Lagged(self._missed, self._missed_first, self._missed_last))
            self._missed = 0
        out.extend(self._items)
        self._items.clear()
        if self._wakeup.is_set():
            self._wakeup = trio.Event()
        return out

    async def next_batch(self) -> list[BusEvent | Lagged]:
        """Wait until something is buffered, then :meth:`drain`. Returns [] once closed."""
        while not self._items and not self._missed and not self.closed:
            await self._wakeup.wait()
        return self.drain()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()
        self.bus._subscribers.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._seq = 0

    @property
    def seq(self) -> int:
        """The sequence number of the last published item."""
        return self._seq

    def subscribe(self, topics: Iterable[str] | None = None, session: str | None = None,
                  buffer: int = DEFAULT_BUFFER) -> Subscription:
        """A new subscription. ``topics`` match exactly or by their first part (``session`` matches
        ``session.state``); ``session`` keeps only one session's items; ``buffer`` bounds memory."""
        if buffer < 1:
            raise ValueError("a subscription buffer holds at least one item")
        sub = Subscription(self, frozenset(topics) if topics else None, session, buffer)
        self._subscribers.add(sub)
        return sub

    def publish(self, topic: str, payload: Any, session: str | None = None) -> None:
        self._seq += 1
        if not self._subscribers:
            return
        item = BusEvent(self._seq, topic, session, payload)
        for sub in list(self._subscribers):
            if sub.wants(topic, session):
                sub.offer(item)

    # --- the kernel's own sources (wired by the builtin plugin's observer hooks) --------------------

    def watch_session(self, session: Session) -> Callable[[], None]:
        def forward(s: Session, event: Any) -> None:
            self.publish("session.event", event, s.handle)  # a renamed session publishes under its new handle

        return session.subscribe(forward)
