"""The plane inside the real kernel: registered through the ``aegis`` entry point machinery, started
as a service, and serving the kernel's operations to a session token the kernel issued."""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx
import pytest

from aegis_kernel.operations import Operation, OperationError, params
from mcp_testkit import HEADERS

kernel_mod = pytest.importorskip("aegis_kernel.kernel")


@pytest.mark.trio
async def test_plane_as_a_kernel_service(tmp_path):
    import aegis_mcp.plugin

    async def whoami(ctx, from_handle=None):
        if ctx.caller.handle is None:
            raise OperationError("agents only")
        return {"you": ctx.caller.handle, "from_handle": from_handle}

    async with kernel_mod.open_kernel(tmp_path, entry_points=False, extra_plugins=[("mcp", aegis_mcp.plugin)]) as kernel:
        assert kernel.mcp_base_url and kernel.mcp_base_url.startswith("http://127.0.0.1:")
        assert "mcp" in kernel.services
        kernel.operations.add(Operation("aegis_whoami", whoami, "Who am I?", params(from_handle={"type": "string"})))
        plane = kernel.services["mcp"]
        url = kernel.mcp_base_url + plane.identities.issue(SimpleNamespace(handle="swift-otter"))
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(url, headers=HEADERS, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                                              "params": {"name": "aegis_whoami", "arguments": {}}})
            assert r.json()["result"]["structuredContent"] == {"you": "swift-otter", "from_handle": "swift-otter"}
            r = await client.post(kernel.mcp_base_url + "forged", headers=HEADERS,
                                  json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert r.status_code == 403
        base = kernel.mcp_base_url
    assert kernel.mcp_base_url is None
    ledger = list((tmp_path / ".aegis" / "state" / "comms").glob("*.jsonl"))
    assert len(ledger) == 1
    assert json.loads(ledger[0].read_text().splitlines()[-1])["from"] == "swift-otter"
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.post(base + "x", json={})
