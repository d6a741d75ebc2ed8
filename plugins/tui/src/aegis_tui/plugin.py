"""aegis-tui plugin entry point: the ``aegis tui`` verb (bare ``aegis`` on a terminal runs it) and
``aegis demo``; it declares ``aegis_register_panels`` (:mod:`aegis_tui.hookspecs`). Import-light: Textual and the app are imported inside the verbs."""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


@hookimpl
def aegis_add_hookspecs(pm: Any) -> None:
    from . import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def aegis_register_cli(register: Any) -> None:
    from .cli import demo_run, demo_setup, tui_run, tui_setup

    register("tui", "the full-screen terminal UI (what bare `aegis` opens)", tui_setup, tui_run)
    register("demo", "a guided tour on scripted agents in a throwaway project (no account needed)",
             demo_setup, demo_run)
