"""The MCP SDK server (``mcp`` 2.x): every kernel operation as a tool, streamable HTTP, stateless JSON.

Importing this module imports ``mcp`` (~0.6–1.2 s, ~35 MB): only :class:`~aegis_mcp.plane.McpPlane`
does, and only when a request needs the SDK (see :mod:`aegis_mcp.front`).

Why the low-level ``mcp.server.Server`` and not ``MCPServer``: ``MCPServer`` tools are Python
functions whose schemas pydantic derives from type hints, registered one by one; our tools are the
kernel's operations, described by their own JSON schemas and looked up at call time (operations
registered later appear without a rebuild). That is exactly the low-level server's
``on_list_tools`` / ``on_call_tool`` API. ``MCPServer`` would also call ``logging.basicConfig`` with a
stderr handler on construction, which the TUI cannot have.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.transport_security import TransportSecuritySettings

from . import __version__
from .front import ALLOWED_HOSTS, ALLOWED_ORIGINS, HANDLE_SCOPE_KEY, INSTRUCTIONS, SERVER_NAME

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from .tools import ToolBridge

STREAMABLE_HTTP_PATH = "/mcp/{token}"


def _caller_handle(bridge: ToolBridge, ctx: Any) -> str | None:
    request = getattr(ctx, "request", None)
    scope = getattr(request, "scope", None) or {}
    if HANDLE_SCOPE_KEY in scope:
        return scope[HANDLE_SCOPE_KEY]
    token = (scope.get("path_params") or {}).get("token", "")
    return bridge.resolve(token)


def build_server(bridge: ToolBridge) -> Server[Any]:
    """The low-level MCP server whose tools are ``bridge``'s operations."""

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult.model_validate({"tools": bridge.list_tools()})

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        handle = _caller_handle(bridge, ctx)
        if handle is None:  # unreachable behind the front app, which refuses unknown tokens first
            raise PermissionError("unknown MCP token")
        result = await bridge.call(handle, params.name, params.arguments)
        if "structuredContent" in result:  # make sure pydantic can serialize whatever the handler returned
            result = {**result, "structuredContent": json.loads(json.dumps(result["structuredContent"], default=str))}
        return types.CallToolResult.model_validate(result)

    return Server(
        SERVER_NAME,
        version=__version__,
        instructions=INSTRUCTIONS if bridge.has_tool("aegis_meta") else None,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def build_app(bridge: ToolBridge) -> tuple[Starlette, StreamableHTTPSessionManager]:
    """The SDK's streamable-HTTP ASGI app (stateless, JSON responses) and its session manager.

    The caller runs ``session_manager.run()`` (the Starlette lifespan would, but the front app owns
    the lifespan and builds this lazily).
    """
    server = build_server(bridge)
    app = server.streamable_http_app(
        streamable_http_path=STREAMABLE_HTTP_PATH,
        json_response=True,
        stateless_http=True,
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=list(ALLOWED_HOSTS),
            allowed_origins=list(ALLOWED_ORIGINS),
        ),
    )
    return app, server.session_manager
