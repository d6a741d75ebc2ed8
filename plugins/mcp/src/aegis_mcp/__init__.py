"""Aegis MCP plane: every registered kernel operation, served to agents as an MCP tool.

One streamable-HTTP MCP server on ``127.0.0.1`` per kernel; each session reaches it at
``kernel.mcp_base_url + <its secret token>``, which is how the plane knows who is calling.
The kernel runs :class:`McpPlane` as a service (registered by :mod:`aegis_mcp.plugin`).

This package stays import-light (no ``mcp``, no ``h11`` at import time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .plane import McpPlane

__all__ = ["McpPlane", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "McpPlane":
        from .plane import McpPlane

        return McpPlane
    raise AttributeError(f"module 'aegis_mcp' has no attribute {name!r}")
