"""The kernel clock: wall time and trio time move together under trio's MockClock."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import trio
import trio.testing

from aegis_kernel import Clock
from aegis_kernel.clock import iso_utc, parse_iso

T0 = "2026-01-01T00:00:00Z"


@pytest.mark.trio
async def test_a_mock_clock_moves_wall_and_trio_time_together(autojump_clock):
    clock = Clock(wall_start=T0)
    start_wall, start_mono = clock.now(), clock.monotonic()
    assert start_wall == parse_iso(T0) and clock.iso() == T0
    await clock.sleep(3600)  # autojump: no real waiting
    assert clock.monotonic() - start_mono == 3600
    assert clock.now() - start_wall == 3600
    assert clock.datetime() == datetime(2026, 1, 1, 1, 0, tzinfo=timezone.utc)


@pytest.mark.trio
async def test_an_unpinned_clock_under_a_mock_clock_moves_only_when_the_mock_does(mock_clock):
    clock = Clock()
    first = clock.now()
    await trio.testing.wait_all_tasks_blocked()
    assert clock.now() == first  # the mock clock did not move, so neither did the wall
    mock_clock.jump(90)
    assert clock.now() == first + 90


@pytest.mark.trio
async def test_sleep_until_a_wall_time_wakes_exactly_then(autojump_clock):
    clock = Clock(wall_start=T0)
    woke: list[str] = []

    async def alarm() -> None:
        await clock.sleep_until(clock.wall_to_monotonic(parse_iso("2026-01-01T06:30:00Z")))
        woke.append(clock.iso())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(alarm)
        await clock.sleep(6 * 3600 + 29 * 60)
        await trio.testing.wait_all_tasks_blocked()
        assert woke == []
    assert woke == ["2026-01-01T06:30:00Z"]


@pytest.mark.trio
async def test_under_trios_own_clock_wall_time_is_the_systems():
    clock = Clock()
    before = time.time()
    now = clock.now()
    assert before <= now <= time.time()
    assert clock.monotonic() == pytest.approx(trio.current_time(), abs=1)


def test_outside_a_trio_run_the_wall_time_is_the_pinned_start_or_the_systems():
    assert Clock(wall_start=T0).now() == parse_iso(T0)
    before = time.time()
    assert before <= Clock().now() <= time.time()
    assert iso_utc(parse_iso("2026-03-01T12:00:00+00:00")) == "2026-03-01T12:00:00Z"


def test_every_new_trio_run_re_anchors_a_pinned_clock():
    clock = Clock(wall_start=T0)

    async def later() -> float:
        trio.lowlevel.current_clock().jump(100)  # type: ignore[attr-defined]
        return clock.now()  # anchored at first use in this run, after the jump

    assert trio.run(later, clock=trio.testing.MockClock()) == parse_iso(T0)
    assert trio.run(later, clock=trio.testing.MockClock()) == parse_iso(T0)


def test_the_kernel_has_one_clock_that_tests_replace(aegis_project):
    from aegis_kernel.kernel import build_kernel
    from aegis_kernel.testing import DriverPlugin, FakeDriver

    scripted = DriverPlugin(FakeDriver(name="scripted"))  # the test project's agents
    kernel = build_kernel(aegis_project, entry_points=False, extra_plugins=[("drivers", scripted)])
    assert isinstance(kernel.clock, Clock)
    kernel.clock = Clock(wall_start=T0)
    assert kernel.clock.iso() == T0
