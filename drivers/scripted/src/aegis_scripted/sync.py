"""The few thread primitives the scripted agent needs, on ``_thread`` alone.

``threading`` costs ~5 ms of start-up (it imports ``functools``, ``collections``…), and the agent
starts once per queue task. Threads started here are like daemon threads: they do not keep the
process alive.
"""

from __future__ import annotations

import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

Lock = _thread.allocate_lock


class Flag:
    """A one-way event: :meth:`set` once, :meth:`wait` (with a timeout) from any thread."""

    __slots__ = ("_gate", "_set", "_guard")

    def __init__(self) -> None:
        self._gate = _thread.allocate_lock()
        self._gate.acquire()
        self._guard = _thread.allocate_lock()
        self._set = False

    def set(self) -> None:
        with self._guard:
            if not self._set:
                self._set = True
                self._gate.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False when ``timeout`` seconds passed first."""
        if self._set:
            return True
        if self._gate.acquire(True, -1 if timeout is None else max(0.0, timeout)):
            self._gate.release()  # let the next waiter through
            return True
        return self._set


def start(target: Callable[[], object]) -> Flag:
    """Run ``target`` in a new thread; the returned flag is set when it returns (or raises)."""
    done = Flag()

    def run() -> None:
        try:
            target()
        finally:
            done.set()

    _thread.start_new_thread(run, ())
    return done
