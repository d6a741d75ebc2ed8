"""The hook aegis-scheduler declares (added through ``aegis_add_hookspecs``): any distribution ships trigger kinds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pluggy

from aegis_kernel import registration_hook

hookspec = pluggy.HookspecMarker("aegis")


class RegisterTrigger(Protocol):
    def __call__(self, name: str, factory: Callable[[Any], Any]) -> None: ...


@registration_hook("triggers")
@hookspec
def aegis_register_triggers(register: RegisterTrigger) -> None:
    """Contribute trigger kinds (when a schedule fires).

    :param register: ``register(name, factory)``; ``factory(spec)`` gets the
        :class:`~aegis_scheduler.config.ScheduleSpec` and returns an object with
        ``next_after(after: float, anchor: float) -> float | None`` (the first due instant, epoch
        seconds, strictly after ``after``; ``anchor`` is when the schedule was first seen) and
        ``describe() -> str``; it raises ValueError for a spec it cannot use. A spec selects a
        plugin's kind with ``trigger: {kind: <name>, ...}`` (the built-ins: ``cron``, ``every``, ``fire_at``).

    When: once per plugin, when the kernel is built (only where aegis-scheduler is installed).
    Results: collected into ``kernel.plugins.registry["triggers"]``; a name registered twice is
    refused naming both plugins. Raises: the plugin is marked ``failed``.

    .. versionadded:: 0.1
    """
