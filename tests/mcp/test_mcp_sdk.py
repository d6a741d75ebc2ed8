"""The plane against the ``mcp`` SDK: its client works, and the fast path answers as the SDK server does."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
import trio

from mcp_testkit import HANDLE, HEADERS, OTHER_HANDLE, TOKEN, start_plane

@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "sdk"])
@pytest.mark.trio
async def test_sdk_client_initialize_list_call(kernel, fast_path):
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with trio.open_nursery() as nursery:
        plane, base = await start_plane(nursery, kernel, fast_path=fast_path)
        assert plane.sdk_ready is (not fast_path)
        async with streamable_http_client(base + TOKEN) as (read, write), ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "aegis"
            tools = await session.list_tools()
            assert sorted(t.name for t in tools.tools) == ["aegis_boom", "aegis_handoff", "aegis_list_sessions"]
            handoff = next(t for t in tools.tools if t.name == "aegis_handoff")
            assert handoff.input_schema["required"] == ["target_handle", "context"]

            result = await session.call_tool("aegis_list_sessions", {})
            assert result.is_error is False
            assert json.loads(result.content[0].text)[0]["handle"] == HANDLE
            assert result.structured_content["result"][1]["handle"] == OTHER_HANDLE

            result = await session.call_tool("aegis_handoff", {"from_handle": OTHER_HANDLE, "target_handle": HANDLE,
                                                                "context": "x"})
            assert result.is_error is True
            assert json.loads(result.content[0].text)["param"] == "from_handle"

            result = await session.call_tool("aegis_boom", {})
            assert result.is_error is True and result.content[0].text == "internal error in aegis_boom: kaboom"
        assert kernel.calls == [("aegis_list_sessions", HANDLE, {})]
        nursery.cancel_scope.cancel()


# Requests replayed against both paths; (status, JSON body) must agree.
PARITY = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}},
    {"jsonrpc": "2.0", "id": 1, "method": "initialize",
     "params": {"protocolVersion": "2099-01-01", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "ping"},
    {"jsonrpc": "2.0", "id": "p", "method": "ping", "params": {}},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"cursor": "x"}},
    {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "aegis_list_sessions", "arguments": {}}},
    {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "aegis_list_sessions"}},
    {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
     "params": {"name": "aegis_handoff", "arguments": {"target_handle": OTHER_HANDLE, "context": "c"}}},
    {"jsonrpc": "2.0", "id": 6, "method": "tools/call",
     "params": {"name": "aegis_handoff", "arguments": {"target_handle": 7, "context": "c"}}},
    {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
     "params": {"name": "aegis_handoff", "arguments": {"from_handle": OTHER_HANDLE, "target_handle": HANDLE, "context": "c"}}},
    {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "aegis_boom", "arguments": {}}},
    {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "aegis_missing", "arguments": {}}},
    {"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {}},
    {"jsonrpc": "2.0", "id": 10, "method": "tools/call"},
    {"jsonrpc": "2.0", "id": 11, "method": "resources/list"},
    {"jsonrpc": "2.0", "id": 11, "method": "prompts/list"},
    {"jsonrpc": "2.0", "id": 12, "method": "bogus/method"},
    {"jsonrpc": "2.0", "id": 13, "result": {}},
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
]


async def _replay(url: str) -> list[tuple[int, object]]:
    out = []
    async with httpx.AsyncClient(timeout=10) as c:
        for body in PARITY:
            r = await c.post(url, json=body, headers=HEADERS)
            out.append((r.status_code, r.json() if r.content else None))
        r = await c.post(url, content=b"{broken", headers=HEADERS)
        out.append((r.status_code, r.json()["error"]["code"]))
        r = await c.post(url, content=b"{}", headers={**HEADERS, "Content-Type": "text/plain"})
        out.append((r.status_code, r.text))
        r = await c.delete(url, headers=HEADERS)
        out.append((r.status_code, r.json()))
    return out


@pytest.mark.trio
async def test_fast_path_answers_like_the_sdk(kernel):
    async with trio.open_nursery() as nursery:
        _, fast_base = await start_plane(nursery, kernel, fast_path=True)
        _, sdk_base = await start_plane(nursery, kernel, fast_path=False)
        fast = await _replay(fast_base + TOKEN)
        sdk = await _replay(sdk_base + TOKEN)
        for body, f, s in zip([*PARITY, "parse", "content-type", "delete"], fast, sdk, strict=True):
            assert f == s, f"{body}\nfast: {f}\nsdk:  {s}"
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_modern_protocol_requests_go_to_the_sdk(plane, client):
    assert not plane.plane.sdk_ready
    r = await client.post(plane.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={**HEADERS, "MCP-Protocol-Version": "2026-07-28"})
    assert plane.plane.sdk_ready
    # the SDK's 2026-07-28 entry answered (it wants the per-request _meta envelope)
    assert r.status_code == 400 and "io.modelcontextprotocol/protocolVersion" in r.json()["error"]["message"]
    # and the handle of the caller reaches the SDK path too
    r = await client.post(plane.url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                           "params": {"name": "aegis_list_sessions", "arguments": {}}},
                          headers={**HEADERS, "MCP-Protocol-Version": "2030-01-01"})
    assert r.status_code in (200, 400)
    r = await client.post(plane.base + "bad-token", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers={**HEADERS, "MCP-Protocol-Version": "2026-07-28"})
    assert r.status_code == 403


@pytest.mark.trio
async def test_sdk_modern_client_can_call(kernel):
    """The SDK's high-level ``Client`` (which may pick the 2026-07-28 era) works end to end."""
    from mcp.client.client import Client

    async with trio.open_nursery() as nursery:
        plane, base = await start_plane(nursery, kernel)
        async with Client(base + TOKEN) as client:
            tools = await client.list_tools()
            assert "aegis_list_sessions" in [t.name for t in tools.tools]
            result = await client.call_tool("aegis_list_sessions", {})
            assert result.is_error is False
        assert kernel.calls and kernel.calls[-1][1] == HANDLE
        nursery.cancel_scope.cancel()


def test_protocol_versions_mirror_mcp_types():
    from mcp_types import version

    from aegis_mcp import front

    assert front.HANDSHAKE_PROTOCOL_VERSIONS == tuple(version.HANDSHAKE_PROTOCOL_VERSIONS)
    assert front.LATEST_HANDSHAKE_VERSION == version.LATEST_HANDSHAKE_VERSION


def test_plugin_import_is_light():
    code = ("import sys, aegis_mcp.plugin; "
            "aegis_mcp.plugin.aegis_register_services(lambda name, service: None); "
            "heavy = [m for m in ('trio', 'h11', 'mcp', 'mcp_types', 'starlette', 'pydantic') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    code = ("import sys, aegis_mcp.plane; "
            "print([m for m in ('h11', 'mcp', 'mcp_types', 'starlette', 'pydantic') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plugin_registers_the_service():
    from aegis_kernel.operations import load_ref

    from aegis_mcp import McpPlane, plugin

    registered = []
    plugin.aegis_register_services(lambda name, service: registered.append((name, service)))
    assert len(registered) == 1 and registered[0][0] == "mcp"
    service = registered[0][1]
    if isinstance(service, str):  # a lazy "module:factory" reference
        service = load_ref(service)()
    assert isinstance(service, McpPlane)
