"""The state writer: one thread per kernel for the blocking half of durable writes.

The trio loop (in the TUI also Textual's loop) never waits on the disk: ledgers write their lines at
once (one ``os.write`` to the page cache, so a killed process loses nothing) and hand their fsyncs
here; snapshots (``sessions.json``) are written, fsynced and renamed here. Jobs run one at a time in
submission order on a dedicated daemon thread, started on the first job.

Contracts:

- :meth:`StateWriter.submit` returns a :class:`Ticket` at once. ``await ticket.wait()`` (trio) or
  ``ticket.result()`` (blocking, for threads and shutdown) returns once the job ran, raising its
  error if it failed: a caller that acknowledges something only after awaiting its ticket only
  acknowledges what is durable.
- A job submitted with the ``key`` of a job still waiting to run is not queued again: the waiting job
  covers it and its ticket is returned. So a job must read its newest content when it runs (a
  snapshot job writes the latest snapshot; an fsync covers every write made before it runs).
- :meth:`StateWriter.close` runs every job still queued, then stops the thread (a later job starts a
  new one): nothing submitted is ever dropped.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import trio

log = logging.getLogger("aegis.state")

__all__ = ["StateWriter", "Ticket"]


class Ticket:
    """The completion of one job (or of several coalesced ones)."""

    __slots__ = ("_done", "_error", "_waiters")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._waiters: list[tuple[trio.lowlevel.TrioToken, trio.Event]] = []

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> None:
        """Block until the job ran; raise its error if it failed."""
        if not self._done.wait(timeout):
            raise TimeoutError("the state writer did not finish in time")
        if self._error is not None:
            raise self._error

    async def wait(self) -> None:
        """Wait (trio) until the job ran; raise its error if it failed."""
        if not self._done.is_set():
            event = trio.Event()
            with _LOCK:
                if not self._done.is_set():
                    self._waiters.append((trio.lowlevel.current_trio_token(), event))
                else:
                    event.set()
            await event.wait()
        else:
            await trio.lowlevel.checkpoint()
        if self._error is not None:
            raise self._error

    def _finish(self, error: BaseException | None) -> None:
        with _LOCK:
            self._error = error
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for token, event in waiters:
            try:
                token.run_sync_soon(event.set)
            except trio.RunFinishedError:
                pass


_LOCK = threading.Lock()  # guards tickets' waiter lists (tiny critical sections)


class _Job:
    __slots__ = ("fn", "key", "ticket")

    def __init__(self, fn: Callable[[], Any], key: Hashable | None) -> None:
        self.fn, self.key, self.ticket = fn, key, Ticket()


class StateWriter:
    """A queue of blocking state jobs and the one thread that runs them."""

    def __init__(self, name: str = "aegis-state-writer") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._jobs: deque[_Job] = deque()
        self._waiting: dict[Hashable, _Job] = {}  # keyed jobs not started yet
        self._thread: threading.Thread | None = None
        self._closing = False

    def submit(self, fn: Callable[[], Any], *, key: Hashable | None = None) -> Ticket:
        """Run ``fn()`` on the writer thread; see the module docstring for ``key``."""
        with self._cond:
            if key is not None and key in self._waiting:
                return self._waiting[key].ticket
            job = _Job(fn, key)
            self._jobs.append(job)
            if key is not None:
                self._waiting[key] = job
            if self._thread is None:
                self._closing = False
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return job.ticket

    def waiting(self, key: Hashable) -> Ticket | None:
        """The ticket of the job with ``key`` that has not started yet, if any (it will cover what is
        written now)."""
        with self._cond:
            job = self._waiting.get(key)
            return job.ticket if job is not None else None

    def flush(self) -> Ticket:
        """A ticket done once every job submitted before it ran (errors are theirs, not this one's)."""
        return self.submit(_nothing)

    def close(self) -> None:
        """Run what is queued, then stop the thread (blocking; idempotent)."""
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if not self._jobs:
                    self._thread = None
                    return
                job = self._jobs.popleft()
                if job.key is not None and self._waiting.get(job.key) is job:
                    del self._waiting[job.key]
            _run_job(job)


def _run_job(job: _Job) -> None:
    try:
        job.fn()
    except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the ticket
        log.error("state write failed: %s", exc)
        job.ticket._finish(exc)
    else:
        job.ticket._finish(None)


def _nothing() -> None:
    return None
