"""Clocks for budget windows: the real one and a fake one tests move by hand."""

from __future__ import annotations

import time
from datetime import datetime, timezone


class SystemClock:
    """Wall-clock UTC seconds since the epoch."""

    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that only moves when told: ``FakeClock(start).advance(3600)``."""

    def __init__(self, start: float | str = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = parse_iso(start) if isinstance(start, str) else float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        self._now += seconds
        return self._now

    def set(self, when: float | str) -> None:
        self._now = parse_iso(when) if isinstance(when, str) else float(when)


def iso(ts: float) -> str:
    """``2026-01-01T01:00:00Z`` (whole seconds)."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
