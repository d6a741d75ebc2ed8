"""The kernel clock: wall time and trio time behind one object (``kernel.clock``).

Every timer and every "what time is it" in the kernel and its plugins asks :class:`Clock`, so a test
can drive all of them with trio's ``MockClock(autojump_threshold=0)``:

- :meth:`Clock.monotonic` is ``trio.current_time()`` (the run's clock, mock or real);
- :meth:`Clock.now` is the wall time in epoch seconds. Under trio's own clock it is ``time.time()``.
  Under any other trio clock (a ``MockClock``), or when the clock was built with ``wall_start``, it is
  *derived* from the trio clock: ``wall at anchor + (trio.current_time() - trio time at anchor)``, so
  moving the mock clock moves the wall time by exactly as much and nothing else moves it;
- :meth:`Clock.sleep` / :meth:`Clock.sleep_until` sleep on the trio clock (deadlines are cancel scopes).

The anchor is taken on first use in each trio run (a new run re-anchors at the same wall time when
``wall_start`` is pinned, so tests are reproducible). Outside a trio run :meth:`now` is the pinned
``wall_start`` (or ``time.time()``) and :meth:`monotonic` raises, as ``trio.current_time()`` does.
Nothing here blocks; it is safe to call from synchronous hook implementations.

Under ``MockClock(autojump_threshold=0)`` time jumps to the next deadline whenever every task waits —
including a task waiting on a worker thread (the session snapshot's writer, the config watcher) — so a
test that autojumps should not race a deadline against thread work (use transient sessions, or a
``mock_clock`` moved only by ``jump()``).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import trio

__all__ = ["Clock", "iso_utc", "parse_iso"]


class Clock:
    """Wall time and trio time for one kernel. ``Clock(wall_start=epoch_or_iso)`` pins the wall time
    at the first use in a trio run (tests); ``Clock()`` follows the system's wall clock."""

    def __init__(self, wall_start: float | str | None = None) -> None:
        self._pinned = None if wall_start is None else _epoch(wall_start)
        self._run: object | None = None  # the trio run the anchor belongs to
        self._anchor_wall = 0.0
        self._anchor_trio = 0.0
        self._derived = False

    def __repr__(self) -> str:
        return f"Clock(wall_start={self._pinned!r})"

    # --- trio time ------------------------------------------------------------------------------------

    def monotonic(self) -> float:
        """Seconds on the current trio run's clock (``trio.current_time()``); raises outside a run."""
        return trio.current_time()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` on the trio clock (a mock clock jumps instead)."""
        await trio.sleep(seconds)

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until :meth:`monotonic` reaches ``deadline``."""
        await trio.sleep_until(deadline)

    # --- wall time ------------------------------------------------------------------------------------

    def now(self) -> float:
        """Wall time, epoch seconds (UTC); see the module docstring for how it follows a mock clock."""
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:  # not in a trio run
            return self._pinned if self._pinned is not None else time.time()
        if token is not self._run:
            self._anchor(token)
        if not self._derived:
            return time.time()
        return self._anchor_wall + (trio.current_time() - self._anchor_trio)

    def datetime(self) -> datetime:
        """:meth:`now` as an aware UTC ``datetime``."""
        return datetime.fromtimestamp(self.now(), timezone.utc)

    def iso(self) -> str:
        """:meth:`now` as ``2026-01-01T00:00:00Z`` (whole seconds, the format of every ledger's ``at``)."""
        return iso_utc(self.now())

    def wall_to_monotonic(self, wall: float) -> float:
        """The trio time at which :meth:`now` will read ``wall`` (to sleep until a wall time)."""
        return trio.current_time() + (wall - self.now())

    def _anchor(self, token: object) -> None:
        from trio.testing import MockClock

        self._run = token
        self._derived = self._pinned is not None or isinstance(trio.lowlevel.current_clock(), MockClock)
        self._anchor_wall = self._pinned if self._pinned is not None else time.time()
        self._anchor_trio = trio.current_time()


def iso_utc(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC, whole seconds, with a ``Z``: ``2026-01-01T00:00:00Z``."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    """ISO 8601 (``Z`` or an offset; naive means UTC) to epoch seconds."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _epoch(value: float | str) -> float:
    return parse_iso(value) if isinstance(value, str) else float(value)
