"""Hooks the TUI declares (added through ``aegis_add_hookspecs``; listed in docs/hooks.md under aegis-tui)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

import pluggy

from aegis_kernel import registration_hook

hookspec = pluggy.HookspecMarker("aegis")

PanelKind = Literal["tab", "strip", "modal", "band"]


#: ``claims(app, kernel, rel) -> bool`` (or an awaitable of it): does this tab show project file ``rel``?
Claims = Callable[[Any, Any, str], Any]


class RegisterPanel(Protocol):
    def __call__(self, name: str, factory: Callable[..., Any], kind: PanelKind = "tab",
                 key: str | None = None, title: str = "", claims: Claims | None = None,
                 arg_title: str | None = None) -> None: ...


def panel_entry(name: str, factory: Callable[..., Any], kind: PanelKind = "tab", key: str | None = None,
                title: str = "", claims: Claims | None = None,
                arg_title: str | None = None) -> tuple[str, dict[str, Any]]:
    """One ``register(...)`` call as the registry entry the app reads (``registry.objects("panels")``)."""
    if claims is not None and kind != "tab":
        raise ValueError("only a tab can claim files (claims=)")
    if kind not in ("tab", "strip", "modal", "band"):
        raise ValueError(f"panel kind must be tab, strip, modal or band, not {kind!r}")
    if kind == "band" and key is not None:
        raise ValueError("a band has no key of its own: Ctrl+D opens the dashboard that holds every band")
    if arg_title is not None and (kind != "tab" or "{arg}" not in arg_title):
        raise ValueError("arg_title is for a tab and must contain {arg} (e.g. 'term:{arg}')")
    return name, {"factory": factory, "kind": kind, "key": key, "title": title or name, "claims": claims,
                  "arg_title": arg_title or (title or name) + ":{arg}"}


@registration_hook("panels", build=panel_entry)
@hookspec
def aegis_register_panels(register: RegisterPanel) -> None:
    """Contribute TUI panels.

    :param register: ``register(name, factory, kind="tab"|"strip"|"modal"|"band", key=None, title="",
        claims=None, arg_title=None)``: ``factory(app, kernel)`` returns a Textual widget (a ``Screen`` for
        ``kind="modal"``); ``key`` is an optional binding that opens it, installed as a priority binding
        (not for a band); ``title`` defaults to ``name``; ``claims`` (tabs only) is
        ``claims(app, kernel, rel) -> bool`` (or an awaitable of it, awaited in the kernel's trio
        context): when ``aegis_view_file`` asks the TUI to show project file ``rel`` (POSIX, relative to
        the project) and a tab claims it, that tab opens instead of the plain file view, and its widget's
        ``show_path(rel)`` is called when it has one (e.g. the canvases tab puts that canvas first).
        A claim that raises counts as no claim.
        Tabs with an argument: ``await app.open_panel_tab(name, arg="build")`` opens one tab per
        distinct ``arg`` (a string) by calling ``factory(app, kernel, arg)``; it is titled
        ``arg_title`` with ``{arg}`` replaced by ``arg`` (``arg_title`` defaults to ``"<title>:{arg}"``), saved in
        ``workspace.json`` with its ``arg`` and opened again the same way on restore (the key and a
        plain ``open_panel_tab(name)`` still call ``factory(app, kernel)``). ``await
        app.close_panel_tab(widget)`` closes the tab that holds ``widget`` (e.g. a prompt tab that
        opened the real one).

    Kinds: a ``tab`` opens as a tab of its own; a ``strip`` is one always-on line above the status bar;
    a ``modal`` is pushed over everything; a ``band`` is one section of the single Ctrl+D dashboard,
    which the TUI composes from every registered band, in registration order (the factory runs each
    time the dashboard opens; the widget draws its own heading, e.g. a ``Static`` with class ``band``,
    and refreshes itself while mounted — from the kernel's services when the TUI owns the kernel, via
    ``app.call_op`` when ``app.remote`` is set because the TUI is attached to an ``aegis serve``).

    When: once per plugin, when the kernel is built (only where aegis-tui is installed; the TUI
    knows no primitive by name: queue strips and dashboards arrive through this hook). Results:
    collected into ``kernel.plugins.registry["panels"]``; a name registered twice is refused naming
    both plugins. Raises: the plugin is marked ``failed`` and none of its registrations are kept.

    .. versionadded:: 0.1
    """
