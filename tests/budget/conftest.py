"""Budget tests drive the kernel clock with trio's MockClock: a test takes pytest-trio's ``mock_clock``
fixture as an argument of its own (pytest-trio runs the test on a clock only when the test names it)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from aegis_kernel.clock import Clock, parse_iso


class Wall:
    """One kernel :class:`~aegis_kernel.clock.Clock` pinned at ``start``, moved only by jumping the run's
    mock clock: ``attach(kernel)``, ``advance(seconds)``, ``set(iso)``."""

    def __init__(self, start: float | str) -> None:
        self.clock = Clock(wall_start=start)

    @property
    def mock(self) -> MockClock:
        clock = trio.lowlevel.current_clock()
        assert isinstance(clock, MockClock), "the test must take pytest-trio's mock_clock fixture"
        return clock

    def attach(self, kernel: Any) -> Any:
        kernel.clock = self.clock
        return kernel

    def advance(self, seconds: float) -> None:
        self.mock.jump(seconds)

    def set(self, when: str) -> None:
        delta = parse_iso(when) - self.clock.now()
        assert delta >= 0, "the wall clock only moves forward"
        self.mock.jump(delta)


@pytest.fixture
def wall() -> Any:
    """``wall(start)`` → a :class:`Wall` (the test also takes ``mock_clock``)."""
    return Wall
