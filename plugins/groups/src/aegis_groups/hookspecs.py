"""The hook aegis-groups declares (added through ``aegis_add_hookspecs``): reducers are plugins."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pluggy

from aegis_kernel import registration_hook

hookspec = pluggy.HookspecMarker("aegis")

Reducer = Callable[[Sequence[Any]], Any]
"""``reducer(replies) -> JSON-able``: ``replies`` are :class:`aegis_groups.reducers.Reply` records
(``handle``, ``text``, ``status``, ``turn_s``, ``usage``) of the members that answered, in the order
they answered."""


class RegisterReducer(Protocol):
    def __call__(self, name: str, reducer: Reducer, description: str = "") -> None: ...


def reducer_entry(name: str, reducer: Reducer, description: str = "") -> tuple[str, dict[str, Any]]:
    """One ``register(...)`` call as the entry kept in ``kernel.plugins.registry["reducers"]``."""
    if not callable(reducer):
        raise TypeError(f"reducer {name!r} is not callable")
    return name, {"reduce": reducer, "description": description or (reducer.__doc__ or "").strip().split("\n")[0]}


@registration_hook("reducers", build=reducer_entry)
@hookspec
def aegis_register_reducers(register: RegisterReducer) -> None:
    """Contribute group reducers (what ``aegis_group_wait_all(reducer=...)`` names).

    :param register: ``register(name, reducer, description="")``; ``reducer(replies)`` gets the
        replies of the members that answered (``handle``, ``text``, ``status``, ``turn_s``,
        ``usage``), in the order they answered, and returns a JSON-able result (the gather's
        ``reduced``). A reducer that raises makes that gather report an error naming it; the raw
        replies are still returned.

    When: once per plugin, when the kernel is built (only where aegis-groups is installed). Results:
    collected into ``kernel.plugins.registry["reducers"]``; a name registered twice is refused naming
    both plugins. Raises: the plugin is marked ``failed`` and none of its registrations are kept.

    .. versionadded:: 0.1
    """
