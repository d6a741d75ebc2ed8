"""The cron matcher: fields, names, steps, the day-of-month / day-of-week rule, macros, errors, and the
DST rule stated in docs/scheduler.md (pure: no kernel)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from aegis_scheduler.cron import CronError, parse_cron
from aegis_scheduler.triggers import EveryTrigger, parse_every


def fires(expr: str, start: str, n: int, zone: str = "UTC") -> list[str]:
    tz = ZoneInfo(zone)
    t = datetime.fromisoformat(start).replace(tzinfo=timezone.utc).timestamp()
    out = []
    for _ in range(n):
        t = parse_cron(expr).next_after(t, tz)
        out.append(datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d %H:%M %Z"))
    return out


def test_fields_steps_ranges_and_names():
    expr = parse_cron("5/15 9-17/4 * jan,JUL mon-fri")
    assert sorted(expr.minutes) == [5, 20, 35, 50] and sorted(expr.hours) == [9, 13, 17]
    assert sorted(expr.months) == [1, 7] and sorted(expr.weekdays) == [1, 2, 3, 4, 5]
    assert parse_cron("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    daily, hourly = parse_cron("@daily"), parse_cron("@hourly")
    assert (daily.minutes, daily.hours) == ({0}, {0}) and hourly.minutes == {0} and len(hourly.hours) == 24


def test_both_day_fields_restricted_means_either():
    # the 13th of any month, or any Friday
    assert fires("0 12 13 * fri", "2026-02-01T00:00:00", 4) == [
        "2026-02-06 12:00 UTC", "2026-02-13 12:00 UTC", "2026-02-20 12:00 UTC", "2026-02-27 12:00 UTC"]


def test_a_date_that_never_comes_never_fires():
    assert parse_cron("0 0 30 2 *").next_after(0, ZoneInfo("UTC")) is None


@pytest.mark.parametrize("text, message", [
    ("* * * *", "five fields"), ("60 * * * *", "minute: 60 is out of range"), ("* 24 * * *", "hour: 24"),
    ("* * 0 * *", "day of month: 0"), ("* * * 13 *", "month: 13"), ("* * * * 8", "day of week: 8"),
    ("*/0 * * * *", "bad step"), ("5-1 * * * *", "runs backwards"), ("x * * * *", "'x' is not a number"),
])
def test_bad_expressions_say_which_field(text, message):
    with pytest.raises(CronError, match=message):
        parse_cron(text)


def test_gap_times_collapse_onto_the_end_of_the_gap_and_repeated_times_fire_once():
    assert fires("*/30 * * * *", "2026-03-29T00:15:00", 4, "Europe/Berlin") == [
        "2026-03-29 01:30 CET", "2026-03-29 03:00 CEST", "2026-03-29 03:30 CEST", "2026-03-29 04:00 CEST"]
    assert fires("*/30 * * * *", "2026-10-25T00:15:00", 4, "Europe/Berlin") == [
        "2026-10-25 02:30 CEST", "2026-10-25 03:00 CET", "2026-10-25 03:30 CET", "2026-10-25 04:00 CET"]


def test_every_keeps_its_rhythm_from_the_anchor():
    assert parse_every("90s") == 90 and parse_every("10m") == 600 and parse_every("2h") == 7200
    trigger = EveryTrigger(600)
    assert trigger.next_after(1000, anchor=1000) == 1600
    assert trigger.next_after(2500, anchor=1000) == 2800  # a missed beat is not made up
    for bad in ("soon", "0s", "-5m", True):
        with pytest.raises(ValueError):
            parse_every(bad)
