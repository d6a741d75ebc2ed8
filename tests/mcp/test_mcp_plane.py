"""The MCP plane end to end: real HTTP on loopback against a stand-in kernel."""

from __future__ import annotations

import json
import os
import socket
import time
import types

import httpx
import pytest
import trio

from aegis_kernel.operations import Operation, params
from aegis_mcp import McpPlane
from mcp_testkit import HANDLE, HEADERS, OTHER_HANDLE, TOKEN, StubKernel, call_tool, rpc, start_plane

pytestmark = pytest.mark.trio


async def test_started_value_and_base_url(plane):
    assert plane.base.startswith("http://127.0.0.1:") and plane.base.endswith("/mcp/")
    assert plane.kernel.mcp_base_url == plane.base
    assert plane.plane.port and plane.base == f"http://127.0.0.1:{plane.plane.port}/mcp/"
    assert not plane.plane.sdk_ready  # the fast path never needed the SDK


async def test_initialize_and_list_tools(plane, client):
    r = await rpc(client, plane.url, "initialize",
                  {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}})
    assert r.status_code == 200
    assert "mcp-session-id" not in r.headers  # stateless
    result = r.json()["result"]
    assert result["protocolVersion"] == "2025-06-18"
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert result["serverInfo"]["name"] == "aegis"

    r = await client.post(plane.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=HEADERS)
    assert r.status_code == 202 and r.content == b""

    r = await rpc(client, plane.url, "tools/list")
    tools = {t["name"]: t for t in r.json()["result"]["tools"]}
    assert sorted(tools) == ["aegis_boom", "aegis_handoff", "aegis_list_sessions"]
    op = plane.kernel.operations.get("aegis_handoff")
    assert tools["aegis_handoff"]["description"] == op.description
    assert tools["aegis_handoff"]["inputSchema"] == json.loads(json.dumps(op.params))


async def test_call_tool_returns_structured_json(plane, client):
    result = await call_tool(client, plane.url, "aegis_list_sessions")
    assert result["isError"] is False
    expected = [{"handle": HANDLE, "state": "ready"}, {"handle": OTHER_HANDLE, "state": "working"}]
    assert json.loads(result["content"][0]["text"]) == expected
    assert result["content"][0]["type"] == "text"
    assert result["structuredContent"] == {"result": expected}
    assert plane.kernel.calls == [("aegis_list_sessions", HANDLE, {})]

    result = await call_tool(client, plane.url, "aegis_handoff", {"target_handle": OTHER_HANDLE, "context": "hi"})
    assert result["isError"] is False
    assert result["content"][0]["text"] == f"landed at {OTHER_HANDLE}"  # a str result is its own text


async def test_unknown_token_is_refused(plane, client):
    for url in (plane.base + "not-a-token", plane.base + "not-a-token/"):
        r = await rpc(client, url, "tools/call", {"name": "aegis_list_sessions", "arguments": {}})
        assert r.status_code == 403
        assert r.json()["error"]["message"] == "Forbidden: unknown MCP token"
    for url in (plane.base, plane.base.rstrip("/"), plane.base + TOKEN + "/extra", plane.base.replace("/mcp/", "/x/") + TOKEN):
        r = await rpc(client, url, "tools/list")
        assert r.status_code == 404, url
    assert plane.kernel.calls == []
    assert not (plane.kernel.state.root / "comms").exists()  # refused before any tool ran


async def test_bad_arguments_name_the_parameter(plane, client):
    result = await call_tool(client, plane.url, "aegis_handoff", {"target_handle": 42, "context": "x"})
    assert result["isError"] is True
    err = json.loads(result["content"][0]["text"])
    assert err["code"] == "bad_argument" and err["param"] == "target_handle"
    assert result["structuredContent"] == err
    assert "Traceback" not in result["content"][0]["text"]

    result = await call_tool(client, plane.url, "aegis_handoff", {"context": "x"})
    assert json.loads(result["content"][0]["text"])["param"] == "target_handle"

    result = await call_tool(client, plane.url, "aegis_handoff", {"target_handle": "a", "context": "x", "bogus": 1})
    assert json.loads(result["content"][0]["text"])["param"] == "bogus"

    result = await call_tool(client, plane.url, "aegis_nope")
    assert result["isError"] is True
    assert json.loads(result["content"][0]["text"])["code"] == "unknown_operation"
    assert plane.kernel.calls == []


async def test_from_handle_must_be_the_caller(plane, client):
    result = await call_tool(client, plane.url, "aegis_handoff",
                             {"from_handle": OTHER_HANDLE, "target_handle": HANDLE, "context": "impersonate"})
    assert result["isError"] is True
    err = json.loads(result["content"][0]["text"])
    assert err["code"] == "forbidden" and err["param"] == "from_handle"
    assert plane.kernel.calls == []  # the handler never ran

    # omitted or correct: the handler sees the authenticated caller
    for args in ({}, {"from_handle": HANDLE}, {"from_handle": ""}):
        result = await call_tool(client, plane.url, "aegis_handoff", {"target_handle": OTHER_HANDLE, "context": "c", **args})
        assert result["isError"] is False, result
    assert [c[2]["from_handle"] for c in plane.kernel.calls] == [HANDLE] * 3


async def test_operation_error_and_internal_error(plane, client, caplog):
    result = await call_tool(client, plane.url, "aegis_handoff", {"target_handle": "ghost", "context": "x"})
    assert result["isError"] is True
    assert result["structuredContent"] == {"error": "handoff rejected: no session 'ghost'", "code": "unknown_session",
                                           "param": "target_handle"}

    result = await call_tool(client, plane.url, "aegis_boom")
    assert result["isError"] is True
    assert result["content"] == [{"type": "text", "text": "internal error in aegis_boom: kaboom"}]
    assert "structuredContent" not in result
    assert any("aegis_boom" in rec.getMessage() and rec.exc_info for rec in caplog.records)


async def test_comms_ledger_records_every_call(plane, client):
    await call_tool(client, plane.url, "aegis_list_sessions")
    await call_tool(client, plane.url, "aegis_handoff", {"target_handle": OTHER_HANDLE, "context": "x"})
    await call_tool(client, plane.url, "aegis_handoff", {"from_handle": OTHER_HANDLE, "target_handle": HANDLE, "context": "x"})
    await call_tool(client, plane.url, "aegis_boom")
    date = time.strftime("%Y-%m-%d", time.gmtime())
    path = plane.kernel.state.root / "comms" / f"{date}.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["tool"], r["target"], r["outcome"]) for r in records] == [
        ("aegis_list_sessions", None, "ok"),
        ("aegis_handoff", OTHER_HANDLE, "ok"),
        ("aegis_handoff", HANDLE, "refused"),
        ("aegis_boom", None, "error"),
    ]
    for r in records:
        assert r["v"] == 1 and r["from"] == HANDLE
        assert r["ts"].startswith(date + "T") and r["ts"].endswith("Z")
        assert isinstance(r["duration_ms"], float) and r["duration_ms"] >= 0
        assert len(r["call_id"]) == 16
    assert records[2]["code"] == "forbidden"
    assert len({r["call_id"] for r in records}) == 4


async def test_operations_added_after_start_appear(plane, client):
    async def late(ctx, n):
        return {"n": n * 2, "caller": ctx.caller.handle, "via": ctx.caller.via}

    plane.kernel.operations.add(Operation("aegis_late", late, "Registered late.",
                                          params(("n",), n={"type": "integer"})))
    r = await rpc(client, plane.url, "tools/list")
    assert "aegis_late" in [t["name"] for t in r.json()["result"]["tools"]]
    result = await call_tool(client, plane.url, "aegis_late", {"n": 21})
    assert result["structuredContent"] == {"n": 42, "caller": HANDLE, "via": "mcp"}


async def test_origin_and_host_checks(plane, client):
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for origin in ("http://evil.example", "http://127.0.0.1.evil.example:80", "null", "file://"):
        r = await client.post(plane.url, json=body, headers={**HEADERS, "Origin": origin})
        assert r.status_code == 403, origin
    for origin in ("http://localhost:5173", "http://127.0.0.1", "https://[::1]:8443"):
        r = await client.post(plane.url, json=body, headers={**HEADERS, "Origin": origin})
        assert r.status_code == 200, origin
    r = await client.post(plane.url, json=body, headers={**HEADERS, "Host": "evil.example:80"})
    assert r.status_code == 421
    r = await client.post(plane.url, json=body, headers={**HEADERS, "Host": "localhost"})
    assert r.status_code == 200


async def test_stateless_get_and_delete_are_405(plane, client):
    for method in ("GET", "DELETE"):
        r = await client.request(method, plane.url, headers=HEADERS)
        assert r.status_code == 405
        assert r.headers["allow"] == "POST"
        assert r.json()["error"]["code"] == -32600


async def test_malformed_requests(plane, client):
    r = await client.post(plane.url, content=b"{nope", headers=HEADERS)
    assert r.status_code == 400 and r.json()["error"]["code"] == -32700
    r = await client.post(plane.url, content=b"{}", headers={**HEADERS, "Content-Type": "text/plain"})
    assert r.status_code == 400
    r = await client.post(plane.url, json=[{"jsonrpc": "2.0", "id": 1, "method": "ping"}], headers=HEADERS)
    assert r.status_code == 400
    r = await rpc(client, plane.url, "tools/call", {"arguments": {}})
    assert r.json()["error"]["code"] == -32602
    r = await rpc(client, plane.url, "resources/list")
    assert r.json()["error"] == {"code": -32601, "message": "Method not found", "data": "resources/list"}
    r = await rpc(client, plane.url, "ping", id="abc")
    assert r.json() == {"jsonrpc": "2.0", "id": "abc", "result": {}}


async def test_shutdown_on_cancel_closes_the_port(kernel):
    # a grace far longer than the deadline: an idle keep-alive connection must not hold the shutdown
    # for it (a generous deadline that only fails; no wall-clock bound that a loaded machine breaks)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            plane, base = await start_plane(nursery, kernel, graceful_timeout=600)
            port = plane.port
            async with httpx.AsyncClient() as c:  # a keep-alive connection stays open during shutdown
                r = await rpc(c, base + TOKEN, "ping")
                assert r.status_code == 200
                nursery.cancel_scope.cancel()
    assert kernel.mcp_base_url is None and plane.base_url is None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


async def test_identity_is_resolved_per_request(plane, client):
    # a renamed session keeps its token; the plane follows the identity table
    plane.plane.identities.tokens[TOKEN] = "renamed-otter"
    await call_tool(client, plane.url, "aegis_list_sessions")
    assert plane.kernel.calls[-1][1] == "renamed-otter"
    del plane.plane.identities.tokens[TOKEN]
    r = await rpc(client, plane.url, "tools/list")
    assert r.status_code == 403


async def test_two_planes_get_distinct_ports(tmp_path):
    k1, k2 = StubKernel(tmp_path / "a"), StubKernel(tmp_path / "b")
    async with trio.open_nursery() as nursery:
        p1, _ = await start_plane(nursery, k1)
        p2, _ = await start_plane(nursery, k2)
        assert p1.port != p2.port
        nursery.cancel_scope.cancel()


async def test_started_before_serving_still_answers(kernel):
    """``started`` comes once the socket listens; a request sent right then is answered once serving."""
    async with trio.open_nursery() as nursery:
        plane = McpPlane(identities=kernel.stub_identities)
        base = await nursery.start(plane.run, kernel)
        assert plane.port and kernel.mcp_base_url == base
        async with httpx.AsyncClient(timeout=10) as c:
            r = await rpc(c, base + TOKEN, "ping")
        assert r.status_code == 200 and plane.serving.is_set()
        assert plane.start_seconds <= plane.serving_seconds
        nursery.cancel_scope.cancel()


async def test_listen_first_off_starts_serving(kernel):
    async with trio.open_nursery() as nursery:
        plane = McpPlane(listen_first=False, identities=kernel.stub_identities)
        await nursery.start(plane.run, kernel)
        assert plane.serving.is_set()
        nursery.cancel_scope.cancel()


async def test_listening_socket_is_not_inherited(plane, client):
    await plane.plane.serving.wait()
    await rpc(client, plane.url, "ping")
    fd_dir = "/proc/self/fd"
    if not os.path.isdir(fd_dir):
        pytest.skip("needs /proc")
    leaked = []
    for name in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{name}").startswith("socket:") and os.get_inheritable(int(name)):
                leaked.append(name)
        except OSError:
            pass
    assert leaked == []


async def test_client_gone_mid_call_lets_the_call_finish(plane, client, caplog):
    done = trio.Event()

    async def slow(ctx):
        await trio.sleep(0.3)
        done.set()
        return "finished"

    plane.kernel.operations.add(Operation("aegis_slow", slow, "Takes a while.", params()))
    with pytest.raises(httpx.TimeoutException):
        await client.post(plane.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                           "params": {"name": "aegis_slow", "arguments": {}}},
                          headers=HEADERS, timeout=0.05)
    date = time.strftime("%Y-%m-%d", time.gmtime())
    comms = plane.kernel.state.root / "comms" / f"{date}.jsonl"
    with trio.fail_after(30):  # generous: only a hang fails
        await done.wait()
        while "aegis_slow" not in (comms.read_text() if comms.exists() else ""):  # its record, once written
            await trio.sleep(0.01)
    result = await call_tool(client, plane.url, "aegis_list_sessions")
    assert result["isError"] is False
    records = comms.read_text().splitlines()
    assert [json.loads(r)["tool"] for r in records] == ["aegis_slow", "aegis_list_sessions"]
    assert not [r for r in caplog.records if r.levelno >= 40]


async def test_concurrent_calls_from_two_sessions(plane, client):
    from mcp_testkit import OTHER_TOKEN

    results = {}

    async def one(token, i):
        results[(token, i)] = await call_tool(client, plane.base + token, "aegis_handoff",
                                              {"target_handle": OTHER_HANDLE if token == TOKEN else HANDLE,
                                               "context": str(i)})

    async with trio.open_nursery() as n:
        for i in range(10):
            n.start_soon(one, TOKEN, i)
            n.start_soon(one, OTHER_TOKEN, i)
    assert all(not r["isError"] for r in results.values())
    callers = sorted(c[1] for c in plane.kernel.calls)
    assert callers == [OTHER_HANDLE] * 10 + [HANDLE] * 10


@pytest.mark.parametrize("delay", [None, 0, 0.001, 0.01])
async def test_cancel_while_starting_is_clean(kernel, delay):
    """Kernels that stop right after starting (tests, CLI verbs) cancel the plane mid-start."""
    for _ in range(5):
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                plane, _ = await start_plane(nursery, kernel)
                if delay is not None:
                    await trio.sleep(delay)
                nursery.cancel_scope.cancel()
        assert kernel.mcp_base_url is None
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", plane.port), timeout=1).close()


async def test_refusal_inside_a_handler_nursery_stays_a_refusal(plane, client):
    from aegis_kernel.operations import OperationError

    async def nested(ctx):
        async def inner():
            raise OperationError("no such queue 'q'", code="unknown_queue", param="queue")

        async with trio.open_nursery() as n:
            n.start_soon(inner)

    plane.kernel.operations.add(Operation("aegis_nested", nested, "Refuses from a child task.", params()))
    result = await call_tool(client, plane.url, "aegis_nested")
    assert result["isError"] is True
    assert result["structuredContent"] == {"error": "no such queue 'q'", "code": "unknown_queue", "param": "queue"}


async def test_a_call_without_a_handle_is_never_the_user():
    """Whatever an identity table answers, an MCP call is an agent's: an empty handle is refused, not
    promoted to the user principal (which may stop Aegis and answer approvals)."""
    from aegis_kernel.operations import Operation, OperationRegistry
    from aegis_mcp.tools import ToolBridge

    stopped = []

    async def stop(ctx):
        stopped.append(ctx.caller.tag)
        return "stopping"

    kernel = types.SimpleNamespace(operations=OperationRegistry())
    kernel.operations.add(Operation("aegis_stop", stop, "stop", callers=("user",)))
    for handle in ("", None):
        result = await ToolBridge(kernel, None).call(handle, "aegis_stop", {})
        assert result["isError"] is True
    assert stopped == []
