"""Entry point of ``aegis-claude`` (group ``aegis``): registers the ``claude-code`` driver.

Import-light: ``aegis plugins list`` imports this module; trio and the codec load only when the
kernel asks for drivers.
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


@hookimpl
def aegis_register_drivers(register: Any) -> None:
    from .driver import ClaudeDriver

    register(ClaudeDriver())
