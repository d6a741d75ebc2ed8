"""Hooks the TUI declares (added through ``aegis_add_hookspecs``; listed in docs/hooks.md under aegis-tui)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

import pluggy

from aegis_kernel import registration_hook

hookspec = pluggy.HookspecMarker("aegis")

PanelKind = Literal["tab", "strip", "modal"]


class RegisterPanel(Protocol):
    def __call__(self, name: str, factory: Callable[[Any, Any], Any], kind: PanelKind = "tab",
                 key: str | None = None, title: str = "") -> None: ...


def panel_entry(name: str, factory: Callable[[Any, Any], Any], kind: PanelKind = "tab", key: str | None = None,
                title: str = "") -> tuple[str, dict[str, Any]]:
    """One ``register(...)`` call as the registry entry the app reads (``registry.objects("panels")``)."""
    if kind not in ("tab", "strip", "modal"):
        raise ValueError(f"panel kind must be tab, strip or modal, not {kind!r}")
    return name, {"factory": factory, "kind": kind, "key": key, "title": title or name}


@registration_hook("panels", build=panel_entry)
@hookspec
def aegis_register_panels(register: RegisterPanel) -> None:
    """Contribute TUI panels.

    :param register: ``register(name, factory, kind="tab"|"strip"|"modal", key=None, title="")``:
        ``factory(app, kernel)`` returns a Textual widget (a ``Screen`` for ``kind="modal"``); ``key``
        is an optional binding that opens it, installed as a priority binding; ``title`` defaults to
        ``name``.

    When: once per plugin, when the kernel is built (only where aegis-tui is installed; the TUI
    knows no primitive by name: queue strips and dashboards arrive through this hook). Results:
    collected into ``kernel.plugins.registry["panels"]``; a name registered twice is refused naming
    both plugins. Raises: the plugin is marked ``failed`` and none of its registrations are kept.

    .. versionadded:: 0.1
    """
