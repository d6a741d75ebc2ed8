"""Entry point of ``aegis-scripted``: registers the ``scripted`` driver (imported lazily)."""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


@hookimpl
def aegis_register_drivers(register: Any) -> None:
    from .driver import ScriptedDriver

    register(ScriptedDriver())
