"""aegis_acp.jsonrpc + aegis_acp.codec: sans-I/O parsing, golden tests over real Gemini/OpenCode captures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aegis_acp import codec
from aegis_acp.codec import (
    AgentInfo,
    PermissionOption,
    UpdateTranslator,
    parse_initialize,
    pick_option,
    turn_error,
    turn_result,
    usage_from_prompt_result,
)
from aegis_acp.jsonrpc import (
    ErrorResponse,
    Invalid,
    Notification,
    Request,
    Response,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    parse_line,
)
from aegis_kernel.events import (
    AssistantText,
    Diff,
    PermissionRequest,
    Plan,
    PlanEntry,
    Thinking,
    TokenUsage,
    ToolResult,
    ToolUse,
    TurnResult,
    Unknown,
    UsageUpdate,
    UserEcho,
)

DATA = Path(__file__).parent / "data"


def replay(name: str) -> list:
    """Feed a capture's incoming frames through the codec, as the client does."""
    translator = UpdateTranslator()
    prompts: set[int] = set()
    out: list = []
    for line in (DATA / name).read_text().splitlines():
        rec = json.loads(line)
        if rec["dir"] == "out":
            if rec["msg"].get("method") == "session/prompt":
                prompts.add(rec["msg"]["id"])
            continue
        raw = json.dumps(rec["msg"]).encode()
        msg = parse_line(raw)
        assert not isinstance(msg, Invalid), msg
        if isinstance(msg, Notification) and msg.method == "session/update":
            out += translator.update(msg.params, raw)
        elif isinstance(msg, Request) and msg.method == "session/request_permission":
            out += translator.permission(str(msg.id), msg.params, raw)
        elif isinstance(msg, Response) and msg.id in prompts:
            out += translator.flush()
            out.append(turn_result(msg.result, usage=usage_from_prompt_result(msg.result)))
    return out


GEMINI_USAGE = TokenUsage(input=111, output=22)
OPENCODE_USAGE = TokenUsage(input=104, output=22, cache_read=7)
OC_CTX = UsageUpdate(context_used=111, context_size=100000, cost_usd=0.0)
GEMINI_OPTIONS = ("proceed_always_server", "proceed_always_tool", "proceed_once", "cancel")

GOLDEN = {
    "gemini_acp_hello.jsonl": [
        AssistantText("FAKE_REPLY to: hello"),
        TurnResult(usage=GEMINI_USAGE),
    ],
    "gemini_acp_cancel.jsonl": [
        AssistantText("slow0 "),
        TurnResult(stop_reason="cancelled"),
        AssistantText("FAKE_REPLY to: after cancel"),
        TurnResult(usage=GEMINI_USAGE),
    ],
    "gemini_acp_load.jsonl": [
        "UserEcho:<session_context>",
        UserEcho("hello"),
        AssistantText("FAKE_REPLY to: hello"),
        AssistantText("FAKE_REPLY to: again"),
        TurnResult(usage=GEMINI_USAGE),
    ],
    "gemini_acp_mcp.jsonl": [
        PermissionRequest(request_id="0", tool_name="echo (fake MCP Server)", kind="other",
                          summary="echo (fake MCP Server)", raw_input={"text": "hi there"}, options=GEMINI_OPTIONS),
        ToolUse("mcp_fake_echo__mcp_fake_echo_1795502718428_0", "echo (fake MCP Server)", "other",
                "echo (fake MCP Server)", {"text": "hi there"}),
        ToolResult("mcp_fake_echo__mcp_fake_echo_1795502718428_0", "ECHO:hi there", kind="other"),
        AssistantText('FAKE_DONE tool_result={"output": "<untrusted_context>\\nECHO:hi there\\n</untrusted_context>"}'),
        TurnResult(usage=TokenUsage(input=222, output=44)),
        PermissionRequest(request_id="1", tool_name="add (fakestdio MCP Server)", kind="other",
                          summary="add (fakestdio MCP Server)", raw_input={"a": 2, "b": 3}, options=GEMINI_OPTIONS),
        ToolUse("mcp_fakestdio_add__mcp_fakestdio_add_1795502718553_0", "add (fakestdio MCP Server)", "other",
                "add (fakestdio MCP Server)", {"a": 2, "b": 3}),
        ToolResult("mcp_fakestdio_add__mcp_fakestdio_add_1795502718553_0", "5", kind="other"),
        AssistantText('FAKE_DONE tool_result={"output": "<untrusted_context>\\n5\\n</untrusted_context>"}'),
        TurnResult(usage=TokenUsage(input=222, output=44)),
    ],
    "opencode_acp_hello.jsonl": [
        AssistantText("FAKE_REPLY to: hello", message_id="msg_20c4e32bb0010bSqD5ZLwHwb47"),
        OC_CTX,
        TurnResult(usage=OPENCODE_USAGE),
    ],
    "opencode_acp_cancel.jsonl": [
        AssistantText("slow0 ", message_id="msg_20c4e1f43001I4k6f05ILQnScn"),
        AssistantText("slow1 ", message_id="msg_20c4e1f43001I4k6f05ILQnScn"),
        AssistantText("slow2 ", message_id="msg_20c4e1f43001I4k6f05ILQnScn"),
        UsageUpdate(context_used=0, context_size=100000, cost_usd=0.0),
        TurnResult(stop_reason="cancelled", usage=TokenUsage()),
        AssistantText("FAKE_REPLY to: after cancel", message_id="msg_20c4e26f3001CEZTA7QmVHQ1kJ"),
        OC_CTX,
        TurnResult(usage=OPENCODE_USAGE),
    ],
    "opencode_acp_load.jsonl": [
        UserEcho("hello"),
        AssistantText("FAKE_REPLY to: hello", message_id="msg_20c4e32bb0010bSqD5ZLwHwb47"),
        AssistantText("FAKE_REPLY to: again", message_id="msg_20c4e425e001WjxNujw60H9jRp"),
        OC_CTX,
        TurnResult(usage=OPENCODE_USAGE),
    ],
    "opencode_acp_mcp.jsonl": [
        # tool_call (pending, rawInput {}) is held one frame; the in_progress update brings the input.
        ToolUse("call_4fd6f577fff742c1a3d6", "fake_echo", "other", "fake_echo", {"text": "hi there"}),
        ToolResult("call_4fd6f577fff742c1a3d6", "ECHO:hi there", kind="other"),
        AssistantText("FAKE_DONE tool_result=ECHO:hi there", message_id="msg_20c4e11b0001RvdvU9T1QRGrB4"),
        OC_CTX,
        TurnResult(usage=OPENCODE_USAGE),
        ToolUse("call_5f1e9b4a3321495a9e0f", "fakestdio_add", "other", "fakestdio_add", {"a": 2, "b": 3}),
        ToolResult("call_5f1e9b4a3321495a9e0f", "5", kind="other"),
        AssistantText("FAKE_DONE tool_result=5", message_id="msg_20c4e12c90011HsoPEzxbVoxEf"),
        OC_CTX,
        TurnResult(usage=OPENCODE_USAGE),
    ],
}


def test_every_acp_capture_has_a_golden():
    assert sorted(p.name for p in DATA.glob("*acp*.jsonl")) == sorted(GOLDEN)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_capture_golden(name):
    got = replay(name)
    expected = GOLDEN[name]
    assert len(got) == len(expected), got
    for g, e in zip(got, expected, strict=True):
        if isinstance(e, str):  # "Type:prefix" for long texts
            kind, prefix = e.split(":", 1)
            assert type(g).__name__ == kind and g.text.startswith(prefix)
        else:
            assert g == e


def test_capture_initialize_replies():
    gemini = json.loads((DATA / "gemini_acp_hello.jsonl").read_text().splitlines()[1])["msg"]["result"]
    opencode = json.loads((DATA / "opencode_acp_hello.jsonl").read_text().splitlines()[1])["msg"]["result"]
    g, o = parse_initialize(gemini), parse_initialize(opencode)
    assert (g.name, g.version, g.load_session, g.mcp_http, g.session_resume, g.session_close) == (
        "gemini-cli", "0.61.0", True, True, False, False)
    assert "gemini-api-key" in g.auth_methods
    assert (o.name, o.load_session, o.mcp_http, o.session_resume, o.session_close) == (
        "OpenCode", True, True, True, True)


# --- JSON-RPC framing -----------------------------------------------------------------------------


@pytest.mark.parametrize("line,reason", [
    (b"", "not JSON"),
    (b"garbage{", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1,2]", "not a JSON object"),
    (b'"text"', "not a JSON object"),
    (b'{"id":1,"result":{}}', "jsonrpc"),
    (b'{"jsonrpc":"2.0"}', "neither"),
    (b'{"jsonrpc":"2.0","method":5}', "method"),
    (b'{"jsonrpc":"2.0","method":"x","params":3}', "params"),
    (b'{"jsonrpc":"2.0","method":"x","id":true}', "request id"),
    (b'{"jsonrpc":"2.0","method":"x","id":1.5}', "request id"),
    (b'{"jsonrpc":"2.0","id":1}', "without result"),
    (b'{"jsonrpc":"2.0","id":[1],"result":1}', "response id"),
    (b'{"jsonrpc":"2.0","id":1,"error":"bad"}', "error is not an object"),
    (b'{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}', "integer code"),
])
def test_garbage_lines_are_invalid_never_raise(line, reason):
    msg = parse_line(line)
    assert isinstance(msg, Invalid)
    assert reason in msg.reason


def test_invalid_raw_is_truncated():
    msg = parse_line(b"x" * 100_000)
    assert isinstance(msg, Invalid) and len(msg.raw) < 5000 and "100000 chars" in msg.raw


def test_parse_valid_messages():
    assert parse_line(b'{"jsonrpc":"2.0","id":0,"method":"m","params":{"a":1}}') == Request(0, "m", {"a": 1})
    assert parse_line('{"jsonrpc":"2.0","id":"x","method":"m"}') == Request("x", "m", None)
    assert parse_line(b'{"jsonrpc":"2.0","method":"n","params":[1]}') == Notification("n", [1])
    assert parse_line(b'{"jsonrpc":"2.0","id":3,"result":null}') == Response(3, None)
    assert parse_line(b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}') == \
        ErrorResponse(None, -32700, "parse")
    assert parse_line(b'{"jsonrpc":"2.0","id":4,"error":{"code":-1,"message":"m","data":{"x":1}}}') == \
        ErrorResponse(4, -1, "m", {"x": 1})


def test_encoders_round_trip_and_are_single_lines():
    lines = [
        encode_request(7, "session/prompt", {"prompt": [{"type": "text", "text": "a\nb ✓"}]}),
        encode_notification("session/cancel", {"sessionId": "s"}),
        encode_result(7, {"ok": True}),
        encode_error(8, -32601, "method not found: x"),
        encode_request(9, "m"),
    ]
    for line in lines:
        assert b"\n" not in line
    assert parse_line(lines[0]) == Request(7, "session/prompt", {"prompt": [{"type": "text", "text": "a\nb ✓"}]})
    assert parse_line(lines[1]) == Notification("session/cancel", {"sessionId": "s"})
    assert parse_line(lines[2]) == Response(7, {"ok": True})
    assert parse_line(lines[3]) == ErrorResponse(8, -32601, "method not found: x")
    assert json.loads(lines[4]) == {"jsonrpc": "2.0", "id": 9, "method": "m"}


# --- session/update mapping -----------------------------------------------------------------------


def upd(**update) -> dict:
    return {"sessionId": "s", "update": update}


def test_message_thought_and_user_chunks():
    t = UpdateTranslator()
    chunk = upd(sessionUpdate="agent_message_chunk", content={"type": "text", "text": "hi"}, messageId="m1")
    assert t.update(chunk) == [AssistantText("hi", message_id="m1", partial=False)]
    assert t.update(upd(sessionUpdate="agent_thought_chunk", content={"type": "text", "text": "hmm"})) == [
        Thinking("hmm")]
    assert t.update(upd(sessionUpdate="user_message_chunk", content={"type": "text", "text": "q"})) == [UserEcho("q")]
    assert t.update(upd(sessionUpdate="agent_message_chunk",
                        content={"type": "resource_link", "uri": "file:///a", "name": "a"})) == [
        AssistantText("file:///a")]
    [bad] = t.update(upd(sessionUpdate="agent_message_chunk", content={"type": "image", "data": "…"}))
    assert isinstance(bad, Unknown) and "without text" in bad.reason


@pytest.mark.parametrize("kind", ["available_commands_update", "current_mode_update", "config_option_update",
                                  "session_info_update"])
def test_known_updates_without_events(kind):
    assert UpdateTranslator().update(upd(sessionUpdate=kind, anything=1)) == []


@pytest.mark.parametrize("params,reason", [
    (None, "not an object"),
    ({"sessionId": "s"}, "without an update"),
    (upd(sessionUpdate="something_new"), "unknown session update"),
    (upd(sessionUpdate="usage_update", used="x", size=1), "usage_update"),
    (upd(sessionUpdate="tool_call", title="t"), "toolCallId"),
    (upd(sessionUpdate="tool_call_update", status="completed"), "toolCallId"),
    (upd(sessionUpdate="plan"), "entries"),
])
def test_malformed_updates_become_unknown(params, reason):
    [event] = UpdateTranslator().update(params, b"RAW")
    assert isinstance(event, Unknown) and reason in event.reason and event.raw == "RAW"


def test_translator_never_raises_on_odd_shapes():
    t = UpdateTranslator()
    for params in ([], "x", 3, {"update": []}, {"update": {"sessionUpdate": 5}},
                   upd(sessionUpdate="tool_call", toolCallId="a", title=5, kind=[1], rawInput=7),
                   upd(sessionUpdate="tool_call_update", toolCallId="a", status="completed", content="x"),
                   upd(sessionUpdate="plan", entries=[1, {"content": 2}, {"content": "ok", "status": 3}])):
        for event in t.update(params):
            assert type(event).__name__ in {"Unknown", "ToolUse", "ToolResult", "Plan"}


def test_tool_call_summary_keys_and_result_with_diff():
    t = UpdateTranslator()
    [use] = t.update(upd(sessionUpdate="tool_call", toolCallId="t1", title="Edit a.py", kind="edit",
                         status="pending", rawInput={"file_path": "/p/a.py", "old_string": "x"}))
    assert use == ToolUse("t1", "Edit a.py", "edit", "/p/a.py", {"file_path": "/p/a.py", "old_string": "x"})
    [result] = t.update(upd(sessionUpdate="tool_call_update", toolCallId="t1", status="completed", content=[
        {"type": "content", "content": {"type": "text", "text": "line 1"}},
        {"type": "diff", "path": "/p/a.py", "oldText": None, "newText": "new"},
        {"type": "content", "content": {"type": "text", "text": "line 2"}},
        {"type": "diff", "path": "/p/b.py", "oldText": "o", "newText": "n"},
    ]))
    assert result == ToolResult("t1", "line 1\nline 2", kind="edit", diff=Diff("/p/a.py", "", "new"))
    assert t.update(upd(sessionUpdate="tool_call_update", toolCallId="t1", status="completed")) == []


@pytest.mark.parametrize("raw_input,title,summary", [
    ({"command": "pytest -q\nmore"}, "Bash", "pytest -q"),
    ({"command": ["git", "status"]}, "sh", "git status"),
    ({"filePath": "/x"}, "t", "/x"),
    ({"path": "/y", "pattern": "p"}, "t", "/y"),
    ({"pattern": "TODO"}, "grep", "TODO"),
    ({"query": "trio docs"}, "search", "trio docs"),
    ({"other": 1}, "Some tool", "Some tool"),
    (None, "", ""),
    ({"command": "x" * 500}, "", "x" * 199 + "…"),
])
def test_tool_summary(raw_input, title, summary):
    assert codec.tool_summary(raw_input, title) == summary


def test_failed_tool_uses_raw_output_and_unknown_kind_is_other():
    t = UpdateTranslator()
    events = t.update(upd(sessionUpdate="tool_call", toolCallId="t", title="run", kind="switch_mode",
                          status="in_progress", rawInput={"command": "make"}))
    assert events == [ToolUse("t", "run", "other", "make", {"command": "make"})]
    [res] = t.update(upd(sessionUpdate="tool_call_update", toolCallId="t", status="failed",
                         rawOutput={"error": "exit 2"}))
    assert res == ToolResult("t", "exit 2", is_error=True, kind="other")


def test_in_progress_update_without_tool_call_announces_once():
    t = UpdateTranslator()
    first = t.update(upd(sessionUpdate="tool_call_update", toolCallId="g1", status="in_progress",
                         title="Shell", kind="execute", rawInput={"command": "ls"}))
    assert first == [ToolUse("g1", "Shell", "execute", "ls", {"command": "ls"})]
    assert t.update(upd(sessionUpdate="tool_call_update", toolCallId="g1", status="in_progress")) == []
    [res] = t.update(upd(sessionUpdate="tool_call_update", toolCallId="g1", status="completed",
                         content=[{"type": "content", "content": {"type": "text", "text": "a b"}}]))
    assert res == ToolResult("g1", "a b", kind="execute")


def test_held_tool_call_is_released_by_an_unrelated_frame_or_flush():
    t = UpdateTranslator()
    assert t.update(upd(sessionUpdate="tool_call", toolCallId="h", title="bash", status="pending", rawInput={})) == []
    events = t.update(upd(sessionUpdate="agent_message_chunk", content={"type": "text", "text": "x"}))
    assert events == [ToolUse("h", "bash", "other", "bash", {}), AssistantText("x")]
    assert t.update(upd(sessionUpdate="tool_call", toolCallId="h2", title="read", status="pending")) == []
    assert t.flush() == [ToolUse("h2", "read", "other", "read", None)]
    assert t.flush() == []


def test_tool_call_already_completed_gives_use_and_result():
    events = UpdateTranslator().update(upd(sessionUpdate="tool_call", toolCallId="c", title="Read", kind="read",
                                           status="completed", rawInput={"path": "/a"},
                                           content=[{"type": "content", "content": {"type": "text", "text": "ok"}}]))
    assert events == [ToolUse("c", "Read", "read", "/a", {"path": "/a"}), ToolResult("c", "ok", kind="read")]


def test_plan_and_usage_update():
    t = UpdateTranslator()
    [plan] = t.update(upd(sessionUpdate="plan", entries=[
        {"content": "a", "priority": "high", "status": "completed"}, {"content": "b"}, "junk"]))
    assert plan == Plan((PlanEntry("a", "completed", "high"), PlanEntry("b", "pending", "medium")))
    assert t.update(upd(sessionUpdate="usage_update", used=5, size=10, cost={"amount": 0.25, "currency": "USD"})) == [
        UsageUpdate(context_used=5, context_size=10, cost_usd=0.25)]
    assert t.update(upd(sessionUpdate="usage_update", used=5, size=10, cost={"amount": 3, "currency": "EUR"})) == [
        UsageUpdate(context_used=5, context_size=10)]


def test_permission_request_and_invalid_one():
    t = UpdateTranslator()
    params = {"sessionId": "s", "toolCall": {"toolCallId": "p", "title": "rm -rf build", "kind": "delete",
                                             "rawInput": {"path": "build"}},
              "options": [{"optionId": "y", "name": "Yes", "kind": "allow_once"}, {"optionId": 3}]}
    [req] = t.permission("12", params)
    assert req == PermissionRequest("12", "rm -rf build", "delete", "build", {"path": "build"}, ("y",))
    [bad] = t.permission("13", {"sessionId": "s", "toolCall": {"toolCallId": "q"}, "options": []})
    assert isinstance(bad, Unknown) and "options" in bad.reason


def test_pick_option_by_kind_never_blindly_first():
    opts = [PermissionOption("always", "Always", "allow_always"), PermissionOption("once", "Once", "allow_once"),
            PermissionOption("no", "No", "reject_once"), PermissionOption("never", "Never", "reject_always")]
    assert pick_option(opts, True) == "once"
    assert pick_option(opts, True, always=True) == "always"
    assert pick_option(opts, False) == "no"
    assert pick_option(opts, False, always=True) == "never"
    assert pick_option(opts[:1], True) == "always"  # fall back to the other allow kind
    assert pick_option(opts[:2], False) is None  # no reject option at all: caller answers cancelled
    gemini = [PermissionOption(o, o, k) for o, k in (("proceed_always_server", "allow_always"),
                                                     ("proceed_always_tool", "allow_always"),
                                                     ("proceed_once", "allow_once"), ("cancel", "reject_once"))]
    assert pick_option(gemini, True) == "proceed_once"
    assert pick_option(gemini, False) == "cancel"


# --- turn end -------------------------------------------------------------------------------------


def test_usage_from_prompt_result_variants():
    assert usage_from_prompt_result({"stopReason": "end_turn"}) is None
    assert usage_from_prompt_result("junk") is None
    # OpenCode: inputTokens excludes the cache (total = in + out + cache).
    assert usage_from_prompt_result({"usage": {"inputTokens": 104, "outputTokens": 22, "totalTokens": 133,
                                               "cachedReadTokens": 7}}) == OPENCODE_USAGE
    # An agent that counts the cache inside inputTokens (total = in + out): taken out.
    assert usage_from_prompt_result({"usage": {"inputTokens": 111, "outputTokens": 22, "totalTokens": 133,
                                               "cachedReadTokens": 7, "cachedWriteTokens": 3}}) == \
        TokenUsage(input=101, output=22, cache_read=7, cache_creation=3)
    assert usage_from_prompt_result({"usage": {"inputTokens": 10, "outputTokens": 5, "thoughtTokens": 4}}) == \
        TokenUsage(input=10, output=9)
    assert usage_from_prompt_result({"usage": {"inputTokens": "x", "outputTokens": -3}}) == TokenUsage()
    assert usage_from_prompt_result({"_meta": {"quota": {"token_count": {"input_tokens": 1, "output_tokens": 2}}}}) \
        == TokenUsage(input=1, output=2)


def test_turn_result_and_error():
    assert turn_result({"stopReason": "end_turn"}, duration_ms=5) == TurnResult(duration_ms=5)
    assert turn_result({"stopReason": "refusal"}).is_error
    assert turn_result({"stopReason": "max_tokens"}) == TurnResult(stop_reason="max_tokens")
    assert turn_result({"stopReason": "end_turn"}, cancelled=True).stop_reason == "end_turn"  # finished first
    bad = turn_result({"nope": 1})
    assert bad.stop_reason == "error" and bad.is_error and "malformed" in bad.error
    assert turn_result(None, cancelled=True).stop_reason == "cancelled"
    assert turn_error(-32603, "boom") == TurnResult(stop_reason="error", is_error=True, error="boom (code -32603)")
    assert turn_error(-32603, "boom", cancelled=True) == TurnResult(stop_reason="cancelled")


def test_mcp_servers_param_follows_capabilities():
    headers = {"Authorization": "Bearer t"}
    expected = [{"type": "http", "name": "aegis", "url": "http://h/mcp/x",
                 "headers": [{"name": "Authorization", "value": "Bearer t"}]}]
    assert codec.mcp_servers_param("http://h/mcp/x", "aegis", headers, AgentInfo(mcp_http=True)) == expected
    assert codec.mcp_servers_param("http://h/mcp/x", "aegis", headers, AgentInfo(mcp_http=None)) == expected
    assert codec.mcp_servers_param("http://h/mcp/x", "aegis", headers, AgentInfo(mcp_http=False)) == []
    assert codec.mcp_servers_param(None, "aegis", {}, AgentInfo(mcp_http=True)) == []


def test_parse_initialize_lenient_and_strict():
    info = parse_initialize({"protocolVersion": 1})
    assert info == AgentInfo(protocol_version=1)
    with pytest.raises(ValueError):
        parse_initialize({"agentCapabilities": {}})
    with pytest.raises(ValueError):
        parse_initialize([])


def test_prompt_blocks():
    assert codec.prompt_blocks("hi") == [{"type": "text", "text": "hi"}]
    assert codec.prompt_blocks("hi", "sys") == [{"type": "text", "text": "sys"}, {"type": "text", "text": "hi"}]
