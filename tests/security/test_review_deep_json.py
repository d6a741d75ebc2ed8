"""Review of issue 12 finding 12 beyond the MCP plane: JSON nested deeper than Python's recursion
limit made ``json.loads`` raise ``RecursionError`` — not a ``ValueError`` — past every parser
documented "never raises". One such line on the control socket killed ``aegis serve`` with a
traceback (its agents with it); the same parser reads every ACP agent's stdout; the claude
stream-json parser, an ACP permission's JSON-text arguments and a ledger replay had the same gap."""

from __future__ import annotations

import pytest
import trio

from aegis_kernel import jsonrpc
from aegis_kernel.control import connect_path, socket_path
from aegis_kernel.testing import DriverPlugin, FakeDriver

DEPTH = 200_000
DEEP = b"[" * DEPTH + b"]" * DEPTH


def deep_request() -> bytes:
    return b'{"jsonrpc":"2.0","id":1,"method":"aegis_list_sessions","params":{"x":' + DEEP + b"}}"


def test_the_json_rpc_parser_classifies_absurd_nesting_instead_of_raising():
    msg = jsonrpc.parse_line(deep_request())
    assert isinstance(msg, jsonrpc.Invalid) and "deep" in msg.reason


def test_the_claude_parser_turns_absurd_nesting_into_an_unknown_event():
    pytest.importorskip("aegis_claude")
    from aegis_claude.codec import ClaudeParser
    from aegis_kernel.events import Unknown

    [event] = ClaudeParser().feed(b'{"type":"assistant","message":' + DEEP + b"}")
    assert isinstance(event, Unknown)


def test_an_acp_permission_whose_json_text_arguments_are_absurdly_deep_is_still_asked():
    pytest.importorskip("aegis_acp")
    from aegis_acp.codec import UpdateTranslator
    from aegis_kernel.events import PermissionRequest

    text = "[" * DEPTH + "]" * DEPTH
    params = {"sessionId": "s", "toolCall": {"toolCallId": "t1", "title": "run", "kind": "execute",
                                             "content": [{"type": "content", "content": {"type": "text", "text": text}}]},
              "options": [{"optionId": "a", "name": "Allow", "kind": "allow_once"},
                          {"optionId": "r", "name": "Reject", "kind": "reject_once"}]}
    events = UpdateTranslator().permission("7", params)
    assert isinstance(events[-1], PermissionRequest)  # the person is asked (no Unknown, no refusal)


def test_a_ledger_line_nested_absurdly_deep_is_a_problem_not_a_crash(tmp_path):
    from aegis_kernel.state import Ledger

    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"v":1,"a":1}\n{"v":1,"b":' + DEEP + b'}\n{"v":1,"c":3}\n')
    result = Ledger.replay(path)
    assert [r.get("a", r.get("c")) for r in result.records] == [1, 3]
    assert [p.line_no for p in result.problems] == [2]


@pytest.fixture
def setup(write_config, register_plugin):
    write_config("default_agent: fake\nagents:\n  fake:\n    provider: fake\n")
    register_plugin(DriverPlugin(FakeDriver()))


@pytest.mark.trio
async def test_a_deeply_nested_line_on_the_control_socket_is_refused_and_the_serve_lives(setup, kernel):
    import json
    import socket

    from aegis_kernel.control import ControlServer

    await kernel.nursery.start(ControlServer(kernel, trio.Event()).run)

    def exchange(line: bytes) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(str(connect_path(socket_path(kernel.state.root))))
            sock.sendall(line + b"\n")
            return json.loads(sock.makefile("rb").readline())

    reply = await trio.to_thread.run_sync(exchange, deep_request())
    assert reply["error"]["code"] in (jsonrpc.PARSE_ERROR, jsonrpc.INVALID_REQUEST)
    assert "nested too deeply" in reply["error"]["message"]
    reply = await trio.to_thread.run_sync(exchange, b'{"jsonrpc":"2.0","id":2,"method":"aegis_list_sessions"}')
    assert reply["id"] == 2 and "result" in reply
