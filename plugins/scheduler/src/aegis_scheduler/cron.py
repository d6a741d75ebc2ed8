"""Five-field cron expressions and their DST-correct fire instants in an IANA timezone.

:func:`parse_cron` reads ``minute hour day-of-month month day-of-week`` (``*``, lists, ranges, steps,
month and day names, ``7`` = Sunday; the macros ``@hourly @daily @midnight @weekly @monthly @yearly
@annually``). As in Vixie cron, when both day fields are restricted a day matches if *either* does.

:meth:`CronExpr.next_after` gives the first fire instant strictly after an instant. The expression
matches *wall-clock* times in its timezone, and the rule for daylight-saving changes is:

- **clocks go back** (a wall-clock hour happens twice): a wall-clock time fires once, at its first
  occurrence (``fold=0``); the repeated hour does not fire again;
- **clocks go forward** (a wall-clock hour does not exist): a wall-clock time inside the gap fires at
  the instant the gap ends (``30 2 * * *`` in Europe/Berlin on 2026-03-29 fires at 03:00 CEST), and
  every gap time maps to that one instant, so nothing is invented: ``*/15 * * * *`` fires once at
  03:00, not five times.

So a daily expression fires exactly once every day, and the instants are non-decreasing in wall-clock
time, which is what makes the search below a simple forward walk. Pure: no clock, no trio.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from attrs import frozen

__all__ = ["CronError", "CronExpr", "parse_cron"]

_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                       "dec"), start=1)}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
           "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}), ("month", 1, 12, _MONTHS),
           ("day of week", 0, 7, _DAYS))
_HORIZON_DAYS = 366 * 8  # an expression matching nothing within this (``0 0 30 2 *``) never fires


class CronError(ValueError):
    """A cron expression that does not parse; the message says which field and why."""


@frozen
class CronExpr:
    """A parsed expression: the allowed values of each field (day of week 0–6, Sunday 0)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    dom_any: bool
    dow_any: bool

    def day_matches(self, day: datetime) -> bool:
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.dom_any and self.dow_any:
            return True
        if self.dom_any:
            return dow
        if self.dow_any:
            return dom
        return dom or dow

    def next_wall(self, after: datetime) -> datetime | None:
        """The first naive wall-clock time strictly after naive ``after`` that matches (minute precision)."""
        t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = after + timedelta(days=_HORIZON_DAYS)
        while t <= end:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self.day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            return t
        return None

    def next_after(self, after: float, tz: ZoneInfo) -> float | None:
        """The first fire instant (epoch seconds) strictly after ``after`` under the DST rule above;
        None when the expression never matches again."""
        local = datetime.fromtimestamp(after, tz).replace(tzinfo=None)
        # a gap time maps to a later instant than its wall-clock reading: start early enough near a change
        near_change = _offset(tz, after - 86400) != _offset(tz, after + 86400)
        wall = local - timedelta(days=1) if near_change else local
        while True:
            found = self.next_wall(wall)
            if found is None:
                return None
            instant = wall_instant(found, tz)
            if instant > after:
                return instant
            wall = found


def wall_instant(wall: datetime, tz: ZoneInfo) -> float:
    """The instant a naive wall-clock time fires at in ``tz``: its first occurrence, or, inside a gap,
    the instant the gap ends."""
    first = wall.replace(tzinfo=tz, fold=0)
    instant = first.timestamp()
    if datetime.fromtimestamp(instant, tz).replace(tzinfo=None) == wall:
        return instant
    # in a gap: fold=1 reads it with the offset after the change (an instant before the gap),
    # fold=0 with the one before (an instant after it); the change lies between
    lo, hi = int(wall.replace(tzinfo=tz, fold=1).timestamp()), int(instant)
    if lo > hi:
        lo, hi = hi, lo
    base = _offset(tz, lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(tz, mid) == base:
            lo = mid
        else:
            hi = mid
    return float(hi)


def _offset(tz: ZoneInfo, epoch: float) -> timedelta | None:
    return datetime.fromtimestamp(epoch, timezone.utc).astimezone(tz).utcoffset()


def parse_cron(text: str) -> CronExpr:
    """Parse a five-field expression (or a macro); :class:`CronError` names the bad field."""
    if not isinstance(text, str):
        raise CronError(f"a cron expression is a string of five fields, got {text!r}")
    source = _MACROS.get(text.strip().lower(), text)
    parts = source.split()
    if len(parts) != 5:
        raise CronError(f"a cron expression has five fields (minute hour day-of-month month day-of-week), "
                        f"got {len(parts)} in {text!r}")
    values = [_field(part, *spec) for part, spec in zip(parts, _FIELDS)]
    weekdays = frozenset(d % 7 for d in values[4])
    return CronExpr(text=text, minutes=values[0], hours=values[1], days=values[2], months=values[3],
                    weekdays=weekdays, dom_any=parts[2] == "*", dow_any=parts[4] == "*")


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    out: set[int] = set()
    for item in text.split(","):
        step, stepped = 1, "/" in item
        if stepped:
            item, _, step_text = item.partition("/")
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError(f"{name}: bad step {step_text!r} in {text!r}")
            step = int(step_text)
        if item == "*":
            first, last = low, (6 if name == "day of week" else high)
        elif "-" in item:
            a, _, b = item.partition("-")
            first, last = _value(a, name, low, high, names), _value(b, name, low, high, names)
            if first > last:
                raise CronError(f"{name}: range {item!r} runs backwards")
        else:
            first = _value(item, name, low, high, names)
            last = high if stepped else first  # ``5/15``: from 5 to the end, every 15
        out.update(range(first, last + 1, step))
    return frozenset(out)


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    key = text.strip().lower()
    if key in names:
        return names[key]
    if not key.isdigit():
        raise CronError(f"{name}: {text!r} is not a number" + (f" or a name ({', '.join(names)})" if names else ""))
    value = int(key)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is out of range {low}-{high}")
    return value
