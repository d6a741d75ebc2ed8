"""Test kit for the MCP plane: a stand-in kernel (exactly the attributes the plane uses) and helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from aegis_kernel.operations import Operation, OperationError, OperationRegistry, params
from aegis_mcp import McpPlane

TOKEN = "tok-swift-otter"
HANDLE = "swift-otter"
OTHER_TOKEN = "tok-calm-heron"
OTHER_HANDLE = "calm-heron"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class StubState:
    def __init__(self, root: Path):
        self.root = root

    def path(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


class StubIdentities:
    def __init__(self, tokens: dict[str, str]):
        self.tokens = dict(tokens)

    def resolve(self, token: str) -> str | None:
        return self.tokens.get(token)


class StubKernel:
    """Exactly the attributes ``aegis_kernel.kernel.Kernel`` offers the plane (no ``plugins``: the
    plane then injects no endpoints, and tests hand it :attr:`stub_identities`, the token table)."""

    def __init__(self, root: Path):
        self.operations = OperationRegistry()
        self.stub_identities = StubIdentities({TOKEN: HANDLE, OTHER_TOKEN: OTHER_HANDLE})
        self.state = StubState(root / ".aegis" / "state")
        self.mcp_base_url: str | None = None
        self.calls: list[tuple[str, str | None, dict[str, Any]]] = []


def add_default_operations(kernel: StubKernel) -> None:
    async def list_sessions(ctx):
        kernel.calls.append(("aegis_list_sessions", ctx.caller.handle, {}))
        return [{"handle": HANDLE, "state": "ready"}, {"handle": OTHER_HANDLE, "state": "working"}]

    async def handoff(ctx, from_handle, target_handle, context, interrupt):
        kernel.calls.append(("aegis_handoff", ctx.caller.handle, {"from_handle": from_handle,
                                                                  "target_handle": target_handle}))
        if target_handle == from_handle:
            raise OperationError("handoff rejected: cannot hand off to yourself", param="target_handle")
        if target_handle not in (HANDLE, OTHER_HANDLE):
            raise OperationError(f"handoff rejected: no session '{target_handle}'", code="unknown_session",
                                 param="target_handle")
        return f"landed at {target_handle}"

    async def boom(ctx):
        raise RuntimeError("kaboom")

    kernel.operations.add(Operation("aegis_list_sessions", list_sessions, "List the sessions.", params()))
    kernel.operations.add(Operation(
        "aegis_handoff", handoff, "Hand work to another session.",
        params(("target_handle", "context"),
               from_handle={"type": "string"},
               target_handle={"type": "string", "minLength": 1},
               context={"type": "string"},
               interrupt={"type": "boolean", "default": False}),
    ))
    kernel.operations.add(Operation("aegis_boom", boom, "Always fails.", params()))


async def start_plane(nursery: trio.Nursery, kernel: StubKernel, **kwargs: Any) -> tuple[McpPlane, str]:
    kwargs.setdefault("identities", kernel.stub_identities)
    plane = McpPlane(**kwargs)
    base = await nursery.start(plane.run, kernel)
    return plane, base


async def rpc(client: httpx.AsyncClient, url: str, method: str, params: Any = None, id: Any = 1,
              headers: dict[str, str] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        body["params"] = params
    return await client.post(url, json=body, headers={**HEADERS, **(headers or {})})


async def call_tool(client: httpx.AsyncClient, url: str, name: str, arguments: dict[str, Any] | None = None) -> dict:
    r = await rpc(client, url, "tools/call", {"name": name, "arguments": arguments or {}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "result" in body, body
    return body["result"]
