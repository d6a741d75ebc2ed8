"""Hostile input and slow clients on the MCP plane, over real HTTP on loopback (issue 12, findings 12–13;
the HTTP server's own bounds — request deadline, connection cap — are tested in ``test_http11``)."""

from __future__ import annotations

import json

import pytest
import trio

from aegis_kernel.operations import Operation, params
from aegis_mcp.ledger import CommsLedger
from mcp_testkit import HANDLE, HEADERS, OTHER_HANDLE, call_tool

pytestmark = pytest.mark.trio

MODERN = {**HEADERS, "MCP-Protocol-Version": "2026-07-28"}  # served by the mcp SDK, not the fast path


def deep_call(depth: int) -> bytes:
    return (b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"aegis_handoff","arguments":'
            b'{"target_handle":"calm-heron","context":"x","deep":' + b"[" * depth + b"]" * depth + b"}}}")


def surrogate_call() -> bytes:  # valid JSON text whose string is not Unicode: "x\ud800y"
    return (b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"aegis_handoff","arguments":'
            b'{"target_handle":"calm-heron","context":"x\\ud800y"}}}')


def comms_records(kernel) -> list[dict]:
    return [json.loads(line) for path in sorted((kernel.state.root / "comms").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("headers", [HEADERS, MODERN], ids=["fast", "sdk"])
async def test_50000_deep_arguments_get_a_json_rpc_parse_error_not_a_500(plane, client, headers):
    r = await client.post(plane.url, content=deep_call(50_000), headers=headers)
    assert r.status_code == 400
    body = r.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] == -32700
    assert "nested deeper than" in body["error"]["message"]
    assert plane.kernel.calls == []
    # the plane keeps serving, and the ledger keeps recording
    result = await call_tool(client, plane.url, "aegis_handoff", {"target_handle": OTHER_HANDLE, "context": "hi"})
    assert result["isError"] is False
    assert [r["outcome"] for r in comms_records(plane.kernel)] == ["ok"]


async def test_moderately_deep_arguments_are_refused_before_any_tool_runs(plane, client):
    # deep enough to exhaust the stack later (schema validation, ledgers), shallow enough for json.loads
    r = await client.post(plane.url, content=deep_call(500), headers=HEADERS)
    assert r.status_code == 400 and r.json()["error"]["code"] == -32700
    assert plane.kernel.calls == []
    r = await client.post(plane.url, content=deep_call(20), headers=HEADERS)
    assert r.status_code == 200 and "result" in r.json()  # ordinary nesting reaches the tool


@pytest.mark.parametrize("headers", [HEADERS, MODERN], ids=["fast", "sdk"])
async def test_a_lone_surrogate_is_a_json_rpc_error_and_the_ledger_keeps_writing(plane, client, headers):
    r = await client.post(plane.url, content=surrogate_call(), headers=headers)
    assert r.status_code == 400
    error = r.json()
    assert error["id"] == 7 and error["error"]["code"] == -32600
    assert "lone UTF-16 surrogate" in error["error"]["message"]
    assert plane.kernel.calls == []  # refused at the edge: nothing non-Unicode reaches a handler
    result = await call_tool(client, plane.url, "aegis_handoff", {"target_handle": OTHER_HANDLE, "context": "ü"})
    assert result["isError"] is False
    assert [(r["from"], r["outcome"]) for r in comms_records(plane.kernel)] == [(HANDLE, "ok")]


async def test_raw_utf8_encoded_surrogates_are_refused_too(plane, client):
    body = surrogate_call().replace(b"\\ud800", "\ud800".encode("utf-8", "surrogatepass"))
    r = await client.post(plane.url, content=body, headers=HEADERS)
    assert r.status_code == 400 and r.json()["error"]["code"] == -32700
    assert "not UTF-8" in r.json()["error"]["message"]


async def test_a_result_holding_a_lone_surrogate_is_answered_with_a_replacement_character(plane, client):
    async def garbled(ctx):
        return "bad \udcff byte"  # e.g. a file read with errors="surrogateescape"

    plane.kernel.operations.add(Operation("aegis_garbled", garbled, "Returns non-Unicode text.", params()))
    result = await call_tool(client, plane.url, "aegis_garbled")
    assert result["content"][0]["text"] == "bad \ufffd byte"
    assert comms_records(plane.kernel)[-1]["outcome"] == "ok"


async def test_an_unexpected_failure_is_a_structured_500(plane, client, monkeypatch):
    class BrokenRegistry:
        def __iter__(self):
            raise RuntimeError("the registry is on fire")

    monkeypatch.setattr(plane.kernel, "operations", BrokenRegistry())
    r = await client.post(plane.url, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, headers=HEADERS)
    assert r.status_code == 500
    assert r.json()["error"] == {"code": -32603, "message": "Internal error"}
    assert "on fire" not in r.text and "Traceback" not in r.text
    monkeypatch.undo()
    r = await client.post(plane.url, json={"jsonrpc": "2.0", "id": 4, "method": "tools/list"}, headers=HEADERS)
    assert r.status_code == 200  # the plane survived


async def test_the_comms_ledger_never_raises_on_text_that_is_not_unicode(tmp_path):
    ledger = CommsLedger(lambda date: tmp_path / f"{date}.jsonl")
    ledger.record(call_id="a", handle="swift-otter", tool="aegis_\ud800", target="x\udfffy", outcome="ok",
                  duration_ms=0.1)
    ledger.record(call_id="b", handle="swift-otter", tool="aegis_list_sessions", target=None, outcome="ok",
                  duration_ms=0.1)
    ledger.close()
    (path,) = tmp_path.glob("*.jsonl")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["call_id"], r["tool"], r["target"]) for r in records] == [
        ("a", "aegis_\ufffd", "x\ufffdy"), ("b", "aegis_list_sessions", None)]
    assert path.stat().st_mode & 0o777 == 0o600


async def test_a_client_dripping_a_request_head_is_dropped_at_the_request_deadline(plane, autojump_clock):
    """Through the real plane: a header line every 250 s (each within the 300 s idle timeout) does not
    hold a connection; the request as a whole gets 60 s."""
    stream = await trio.open_tcp_stream("127.0.0.1", plane.plane.port)
    await stream.send_all(f"POST /mcp/{plane.url.rsplit('/', 1)[1]} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
    answer = b""
    for i in range(5):
        with trio.move_on_after(250):
            while data := await stream.receive_some(65536):
                answer += data
            break  # the plane closed the connection
        await stream.send_all(b"X-Drip-%d: y\r\n" % i)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    await stream.aclose()
