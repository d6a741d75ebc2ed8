"""Triggers: when a schedule fires. The three built-in kinds (``cron``, ``every``, ``fire_at``) are
registered through the scheduler's own hook, like any plugin's (:mod:`aegis_scheduler.hookspecs`).

A trigger kind is ``register(name, factory)``: ``factory(spec)`` (a
:class:`~aegis_scheduler.config.ScheduleSpec`) returns a :class:`Trigger`. A spec selects a kind by
setting the field of that name (``cron: "0 6 * * *"``) or, for kinds contributed by other plugins,
``trigger: {kind: <name>, ...}``. Pure: no clock, no trio.
"""

from __future__ import annotations

from typing import Any, Protocol
from zoneinfo import ZoneInfo

from attrs import frozen

from .cron import CronExpr, parse_cron

__all__ = ["BUILTIN", "CronTrigger", "EveryTrigger", "FireAtTrigger", "Trigger", "parse_every"]


class Trigger(Protocol):
    """When a schedule fires: :meth:`next_after` the first due instant strictly after ``after``
    (epoch seconds), ``anchor`` being when the schedule first existed (for interval kinds); None: never again."""

    def next_after(self, after: float, anchor: float) -> float | None: ...

    def describe(self) -> str: ...


@frozen
class CronTrigger:
    expr: CronExpr
    tz: ZoneInfo

    def next_after(self, after: float, anchor: float) -> float | None:
        return self.expr.next_after(after, self.tz)

    def describe(self) -> str:
        return f"cron {self.expr.text} ({self.tz.key})"


@frozen
class EveryTrigger:
    seconds: float

    def next_after(self, after: float, anchor: float) -> float | None:
        """``anchor + k·seconds`` for the smallest k ≥ 1 past ``after``."""
        if after < anchor:
            return anchor + self.seconds
        k = int((after - anchor) // self.seconds) + 1
        return anchor + k * self.seconds

    def describe(self) -> str:
        return f"every {_human(self.seconds)}"


@frozen
class FireAtTrigger:
    at: float

    def next_after(self, after: float, anchor: float) -> float | None:
        return self.at if self.at > after else None

    def describe(self) -> str:
        from aegis_kernel import iso_utc

        return f"at {iso_utc(self.at)}"


def parse_every(value: Any) -> float:
    """``90s``, ``10m``, ``2h``, ``1d`` (or a number of seconds) → seconds; at least one second."""
    import re

    if isinstance(value, bool) or value is None:
        raise ValueError(f"every must be an interval like 90s, 10m or 2h, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*", str(value))
        if not match:
            raise ValueError(f"every must be an interval like 90s, 10m or 2h, got {value!r}")
        seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2) or "s"]
    if seconds < 1:
        raise ValueError(f"every must be at least 1s, got {value!r}")
    return seconds


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (default UTC); ValueError naming it when unknown."""
    from zoneinfo import ZoneInfoNotFoundError

    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r} (an IANA name such as Europe/Berlin)") from None


def _cron(spec: Any) -> Trigger:
    return CronTrigger(parse_cron(spec.cron), zone(spec.timezone))


def _every(spec: Any) -> Trigger:
    return EveryTrigger(parse_every(spec.every))


def _fire_at(spec: Any) -> Trigger:
    from aegis_kernel import parse_iso

    try:
        return FireAtTrigger(parse_iso(str(spec.fire_at)))
    except ValueError:
        raise ValueError(f"fire_at must be an ISO 8601 instant (2026-01-01T06:00:00Z), got {spec.fire_at!r}") from None


BUILTIN = {"cron": _cron, "every": _every, "fire_at": _fire_at}
"""The built-in trigger kinds: spec field → factory."""


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
