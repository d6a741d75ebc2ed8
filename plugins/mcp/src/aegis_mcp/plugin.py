"""Entry point of ``aegis-mcp`` (group ``aegis``): registers the MCP plane service.

Import-light on purpose: ``mcp`` and ``hypercorn`` are imported only when the service runs.
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


@hookimpl
def aegis_register_services(register: Any) -> None:
    from .plane import McpPlane

    register("mcp", McpPlane())
