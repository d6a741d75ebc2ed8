"""The ``schedules:`` config section (owned by aegis-scheduler), also split into overlays
``.aegis/schedules/<name>.yaml`` (each file is one schedule's body).

.. code-block:: yaml

    schedules:
      morning-briefing:
        workflow: prompt                 # a workflow aegis-workflow knows (built-in, plugin or project file)
        args: {agent: default, message: "Write today's briefing."}
        cron: "0 6 * * *"                # exactly one trigger: cron | every | fire_at | trigger
        timezone: America/Havana         # IANA, for cron (default UTC)
        lifecycle: forever               # forever | once | {fires: N} | {until: <iso>}
        on_overlap: skip                 # skip | queue | kill (a fire due while the last still runs)
        catch_up: skip                   # skip | once: fires missed while no kernel ran
        enabled: true

``every: 90s | 10m | 2h`` repeats from when the schedule was first seen; ``fire_at: "2026-12-24T18:00:00Z"``
fires once (quote it). A structural problem (two triggers, a bad cron, an unknown timezone) is an
error of the record and is reported ``file:line: message @ schedules.<name>``; an unknown workflow
is reported by the section check wherever the workflow catalog is known (inside a running kernel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from attrs import frozen

__all__ = ["ScheduleSpec", "check_schedules", "known_workflows"]

OVERLAPS = ("skip", "queue", "kill")
CATCH_UPS = ("skip", "once")
TRIGGER_FIELDS = ("cron", "every", "fire_at", "trigger")


@frozen
class ScheduleSpec:
    """One entry of ``schedules:``. ``added_by`` records who added it through
    ``aegis_schedule_add``/``aegis schedule add`` (overlay files only)."""

    workflow: str
    args: dict[str, Any] | None = None
    cron: str | None = None
    timezone: str | None = None
    every: Any = None
    fire_at: Any = None
    trigger: dict[str, Any] | None = None
    lifecycle: Any = "forever"
    on_overlap: str = "skip"
    catch_up: str = "skip"
    enabled: bool = True
    description: str = ""
    added_by: str | None = None
    added_at: str | None = None

    def __attrs_post_init__(self) -> None:
        from .cron import parse_cron
        from .triggers import parse_every, zone

        if not isinstance(self.workflow, str) or not self.workflow:
            raise ValueError("workflow must name a workflow")
        given = [f for f in TRIGGER_FIELDS if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("a schedule has exactly one trigger: cron, every, fire_at or trigger "
                             f"(got {', '.join(given) or 'none'})")
        if self.timezone is not None and self.cron is None:
            raise ValueError("timezone applies to cron only")
        if self.cron is not None:
            parse_cron(self.cron)
            zone(self.timezone)
        if self.every is not None:
            parse_every(self.every)
        if self.fire_at is not None:
            fire_at_epoch(self.fire_at)
        if self.trigger is not None and not isinstance(self.trigger.get("kind"), str):
            raise ValueError("trigger must name its kind: trigger: {kind: <name>, ...}")
        lifecycle_of(self.lifecycle)
        if self.on_overlap not in OVERLAPS:
            raise ValueError(f"on_overlap must be one of {', '.join(OVERLAPS)}, got {self.on_overlap!r}")
        if self.catch_up not in CATCH_UPS:
            raise ValueError(f"catch_up must be one of {', '.join(CATCH_UPS)}, got {self.catch_up!r}")

    @property
    def kind(self) -> str:
        if self.trigger is not None:
            return str(self.trigger["kind"])
        return next(f for f in TRIGGER_FIELDS if getattr(self, f) is not None)


@frozen
class Lifecycle:
    """``forever`` (max_fires None, until None), ``once`` (max_fires 1), ``{fires: N}``, ``{until: iso}``."""

    max_fires: int | None = None
    until: float | None = None


def lifecycle_of(value: Any) -> Lifecycle:
    if value in (None, "forever"):
        return Lifecycle()
    if value == "once":
        return Lifecycle(max_fires=1)
    if isinstance(value, dict) and set(value) == {"fires"}:
        n = value["fires"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"lifecycle fires must be an integer ≥ 1, got {n!r}")
        return Lifecycle(max_fires=n)
    if isinstance(value, dict) and set(value) == {"until"}:
        return Lifecycle(until=fire_at_epoch(value["until"], what="lifecycle until"))
    raise ValueError(f"lifecycle must be forever, once, {{fires: N}} or {{until: <iso>}}, got {value!r}")


def fire_at_epoch(value: Any, *, what: str = "fire_at") -> float:
    """An ISO 8601 instant (a string, or the timestamp YAML made of an unquoted one; naive = UTC) → epoch."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    from aegis_kernel import parse_iso

    try:
        return parse_iso(str(value))
    except ValueError:
        raise ValueError(f"{what} must be an ISO 8601 instant such as 2026-12-24T18:00:00Z, got {value!r}") from None


# project folder → a function giving the workflow names its running kernel knows (set by the runtime)
_CATALOGS: dict[Path, Callable[[], set[str] | None]] = {}


def known_workflows(project_dir: Path) -> set[str] | None:
    """The workflow names of the kernel running this project in this process (None: none runs here)."""
    found = _CATALOGS.get(Path(project_dir).resolve())
    if found is None:
        return None
    try:
        return found()
    except Exception:  # noqa: BLE001 - a catalog that cannot answer does not invalidate the config
        return None


def register_catalog(project_dir: Path, names: Callable[[], set[str] | None] | None) -> None:
    """Let the section check of ``project_dir`` ask ``names()`` (None: withdraw it)."""
    key = Path(project_dir).resolve()
    if names is None:
        _CATALOGS.pop(key, None)
    else:
        _CATALOGS[key] = names


def check_schedules(config: Any) -> Iterator[tuple[tuple[str, ...], str]]:
    """The section's semantic check: every name is a safe file name (its journal is
    ``schedules/<name>.jsonl``) and, where the workflow catalog is known, every workflow exists."""
    from aegis_kernel import check_safe_name

    workflows = known_workflows(config.project_dir)
    for name, spec in (config.get("schedules") or {}).items():
        problem = check_safe_name(name, "schedule")
        if problem is not None:
            yield ("schedules", name), problem
        if workflows is not None and spec.workflow not in workflows:
            yield (("schedules", name, "workflow"),
                   f"unknown workflow {spec.workflow!r} (registered: {', '.join(sorted(workflows)) or 'none'})")
