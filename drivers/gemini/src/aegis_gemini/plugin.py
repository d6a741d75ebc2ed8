"""Entry point of ``aegis-gemini`` (group ``aegis``): registers the ``gemini`` driver.

Import-light: the driver module (and trio) load only when the kernel asks for drivers.
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


@hookimpl
def aegis_register_drivers(register: Any) -> None:
    from .driver import GeminiDriver

    register(GeminiDriver())
