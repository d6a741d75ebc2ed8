"""Entry point of ``aegis-mcp`` (group ``aegis``): registers the MCP plane service.

Import-light on purpose: the service is a lazy ``"module:factory"`` reference, so neither trio,
h11 nor ``mcp`` is imported until the kernel starts its services.
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


@hookimpl
def aegis_register_services(register: Any) -> None:
    register("mcp", "aegis_mcp.plane:McpPlane")
