"""Entry point of ``aegis-acp``: registers the ``acp`` driver. Import-light: the driver module is
imported only when the kernel asks for drivers."""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


@hookimpl
def aegis_register_drivers(register: Any) -> None:
    from .driver import AcpDriver

    register(AcpDriver())
