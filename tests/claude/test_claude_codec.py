"""aegis_claude.codec: frame shapes beyond the captures, garbage, writers."""

from __future__ import annotations

import copy
import json

import pytest
from aegis_claude import codec
from aegis_claude.codec import ClaudeParser
from aegis_kernel.events import (
    AssistantText,
    CompactBoundary,
    Diff,
    PermissionRequest,
    Plan,
    PlanEntry,
    SystemInit,
    Thinking,
    TokenUsage,
    ToolResult,
    ToolUse,
    TurnResult,
    Unknown,
    UsageUpdate,
    UserEcho,
)

USAGE = {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}


def line(obj: object) -> str:
    return json.dumps(obj)


def assistant(*blocks: dict, mid: str = "msg_1", usage: object = USAGE, parent: str | None = None) -> str:
    return line({"type": "assistant", "message": {"id": mid, "type": "message", "role": "assistant",
                                                  "content": list(blocks), "usage": usage},
                 "parent_tool_use_id": parent, "session_id": "s"})


def tool_use(tid: str, name: str, **inp: object) -> dict:
    return {"type": "tool_use", "id": tid, "name": name, "input": inp}


def user_results(*blocks: dict, parent: str | None = None) -> str:
    return line({"type": "user", "message": {"role": "user", "content": list(blocks)},
                 "parent_tool_use_id": parent, "session_id": "s"})


def tool_result(tid: str, content: object = "ok", is_error: bool = False) -> dict:
    return {"type": "tool_result", "tool_use_id": tid, "content": content, "is_error": is_error}


def stream(event: dict, parent: str | None = None) -> str:
    return line({"type": "stream_event", "event": event, "parent_tool_use_id": parent, "session_id": "s"})


def feed_all(parser: ClaudeParser, *lines: str) -> list:
    out: list = []
    for item in lines:
        out.extend(parser.feed(item))
    return out


# --- assistant frames ------------------------------------------------------------------------------


def test_multi_block_assistant_frame_gives_every_block_in_order():
    p = ClaudeParser()
    events = p.feed(assistant(
        {"type": "thinking", "thinking": "let me see", "signature": "x"},
        {"type": "text", "text": "First."},
        tool_use("t1", "Read", file_path="/src/a.py"),
        {"type": "text", "text": "Second."},
        tool_use("t2", "Grep", pattern="def main", path="/src"),
    ))
    assert events == [
        UsageUpdate(usage=TokenUsage(input=5, output=1, cache_read=100, cache_creation=20)),
        Thinking(text="let me see", message_id="msg_1"),
        AssistantText(text="First.", message_id="msg_1"),
        ToolUse(tool_call_id="t1", name="Read", kind="read", summary="/src/a.py", raw_input={"file_path": "/src/a.py"}),
        AssistantText(text="Second.", message_id="msg_1"),
        ToolUse(tool_call_id="t2", name="Grep", kind="search", summary="def main",
                raw_input={"pattern": "def main", "path": "/src"}),
    ]


def test_usage_once_per_message_id():
    p = ClaudeParser()
    events = feed_all(
        p,
        assistant({"type": "thinking", "thinking": "hm"}, mid="m1"),
        assistant({"type": "text", "text": "a"}, mid="m1"),
        assistant(tool_use("t", "Bash", command="ls"), mid="m1"),
        assistant({"type": "text", "text": "b"}, mid="m2", usage={**USAGE, "input_tokens": 9}),
    )
    assert [e.usage.input for e in events if isinstance(e, UsageUpdate)] == [5, 9]


def test_usage_missing_or_redacted_gives_no_usage_update():
    p = ClaudeParser()
    assert p.feed(assistant({"type": "text", "text": "x"}, usage="<redacted>")) == [
        AssistantText(text="x", message_id="msg_1")
    ]
    assert p.feed(assistant({"type": "text", "text": "y"}, mid="m2", usage=None)) == [
        AssistantText(text="y", message_id="m2")
    ]


def test_subagent_events_carry_parent_tool_use_id():
    p = ClaudeParser()
    events = feed_all(
        p,
        assistant(tool_use("task1", "Task", description="explore", prompt="look around"), mid="m0"),
        assistant({"type": "text", "text": "sub says"}, mid="m1", parent="task1"),
        user_results(tool_result("x1", "sub tool output"), parent="task1"),
    )
    use = events[1]
    assert (use.kind, use.summary, use.parent_tool_use_id) == ("think", "explore", None)
    assert events[3] == AssistantText(text="sub says", message_id="m1", parent_tool_use_id="task1")
    assert events[4].parent_tool_use_id == "task1"


def test_empty_text_and_redacted_thinking_give_nothing():
    p = ClaudeParser()
    events = p.feed(assistant({"type": "text", "text": ""}, {"type": "thinking", "thinking": "", "signature": "s"},
                              {"type": "redacted_thinking", "data": "zzz"}, usage=None))
    assert events == []


def test_server_tool_use_and_its_result_in_the_assistant_frame():
    p = ClaudeParser()
    events = p.feed(assistant(
        {"type": "server_tool_use", "id": "srv1", "name": "WebSearch", "input": {"query": "trio nursery"}},
        {"type": "web_search_tool_result", "tool_use_id": "srv1", "content": [{"type": "text", "text": "hits"}]},
        usage=None,
    ))
    assert events == [
        ToolUse(tool_call_id="srv1", name="WebSearch", kind="fetch", summary="trio nursery",
                raw_input={"query": "trio nursery"}),
        ToolResult(tool_call_id="srv1", text="hits", kind="fetch"),
    ]


# --- tool kinds and summaries ------------------------------------------------------------------------


@pytest.mark.parametrize("name,kind", [
    ("Read", "read"), ("Bash", "execute"), ("BashOutput", "execute"), ("KillShell", "execute"),
    ("Edit", "edit"), ("Write", "edit"), ("NotebookEdit", "edit"), ("MultiEdit", "edit"),
    ("Glob", "search"), ("Grep", "search"), ("WebFetch", "fetch"), ("WebSearch", "fetch"),
    ("Task", "think"), ("Agent", "think"), ("mcp__aegis__aegis_handoff", "other"), ("Skill", "other"),
    ("SomethingNew", "other"),
])
def test_tool_kinds(name: str, kind: str):
    assert codec.tool_kind(name) == kind


def test_summaries():
    assert codec.tool_summary("Bash", {"description": "list", "command": "ls -la"}) == "ls -la"
    assert codec.tool_summary("Write", {"content": "x", "file_path": "/a/b.py"}) == "/a/b.py"
    assert codec.tool_summary("Glob", {"pattern": "**/*.py"}) == "**/*.py"
    assert codec.tool_summary("mcp__aegis__aegis_handoff", {"target_handle": "wry-hopper", "context": "hi"}) == "wry-hopper"
    assert codec.tool_summary("X", {"n": 3}) == ""
    assert codec.tool_summary("X", None) == ""
    long = codec.tool_summary("Bash", {"command": "echo " + "a" * 200})
    assert len(long) == 80 and long.endswith("…")
    assert codec.tool_summary("Bash", {"command": "set -e\n  make test"}) == "set -e make test"


# --- tool results, diffs -----------------------------------------------------------------------------


def test_tool_result_text_kind_and_error():
    p = ClaudeParser()
    events = feed_all(
        p,
        assistant(tool_use("t1", "Bash", command="false"), tool_use("t2", "Read", file_path="/x"), usage=None),
        user_results(
            tool_result("t1", "exit 1", is_error=True),
            tool_result("t2", [{"type": "text", "text": "line one"}, {"type": "text", "text": "line two"},
                               {"type": "image", "source": {}}]),
        ),
    )
    r1, r2 = events[2:]
    assert r1 == ToolResult(tool_call_id="t1", text="exit 1", is_error=True, kind="execute")
    assert r2 == ToolResult(tool_call_id="t2", text="line one\nline two\n[image]", kind="read")


def test_edit_and_write_diffs():
    p = ClaudeParser()
    events = feed_all(
        p,
        assistant(tool_use("e1", "Edit", file_path="/p/a.py", old_string="x = 1", new_string="x = 2"),
                  tool_use("w1", "Write", file_path="/p/b.py", content="print('hi')\n"),
                  tool_use("e2", "Edit", file_path="/p/c.py", old_string="nope", new_string="z"),
                  tool_use("m1", "MultiEdit", file_path="/p/d.py", edits=[
                      {"old_string": "a", "new_string": "b"}, {"old_string": "c", "new_string": "d"}]),
                  usage=None),
        user_results(tool_result("e1", "The file /p/a.py has been updated."), tool_result("w1", "File created"),
                     tool_result("e2", "String to replace not found", is_error=True), tool_result("m1", "ok")),
    )
    results = [e for e in events if isinstance(e, ToolResult)]
    assert results[0].diff == Diff(path="/p/a.py", old_text="x = 1", new_text="x = 2")
    assert results[0].kind == "edit"
    assert results[1].diff == Diff(path="/p/b.py", old_text="", new_text="print('hi')\n")
    assert results[2].diff is None and results[2].is_error  # a failed edit changed nothing
    assert results[3].diff == Diff(path="/p/d.py", old_text="a\nc", new_text="b\nd")


def test_result_for_an_unknown_tool_id():
    p = ClaudeParser()
    assert p.feed(user_results(tool_result("never-seen", {"k": 1}))) == [
        ToolResult(tool_call_id="never-seen", text='{"k": 1}')
    ]


def test_twenty_megabyte_tool_result():
    p = ClaudeParser()
    p.feed(assistant(tool_use("big", "Bash", command="cat huge"), usage=None))
    payload = "x" * (20 * 1024 * 1024)
    raw = user_results(tool_result("big", payload)).encode()
    assert len(raw) > 20 * 1024 * 1024
    [event] = p.feed(raw)
    assert isinstance(event, ToolResult) and event.kind == "execute"
    assert len(event.text) == len(payload)


# --- plans ---------------------------------------------------------------------------------------------


def test_todowrite_gives_a_plan_and_no_tool_events():
    p = ClaudeParser()
    todos = [{"content": "Write tests", "status": "completed", "activeForm": "Writing tests"},
             {"content": "Make them pass", "status": "in_progress", "activeForm": "Making them pass"},
             {"content": "Ship", "status": "pending", "activeForm": "Shipping"}]
    events = feed_all(
        p,
        assistant(tool_use("todo1", "TodoWrite", todos=todos), usage=None),
        user_results(tool_result("todo1", "Todos have been modified successfully.")),
    )
    assert events == [Plan(entries=(
        PlanEntry("Write tests", "completed"), PlanEntry("Make them pass", "in_progress"), PlanEntry("Ship", "pending"),
    ))]
    # A later TodoWrite is a full snapshot, not a delta.
    [plan] = p.feed(assistant(tool_use("todo2", "TodoWrite", todos=todos[:1]), mid="m2", usage=None))
    assert plan.entries == (PlanEntry("Write tests", "completed"),)


def test_task_tools_fold_into_a_cumulative_plan():
    p = ClaudeParser()
    [plan] = p.feed(assistant(tool_use("c1", "TaskCreate", subject="Parse frames", description="..."), usage=None))
    assert plan.entries == (PlanEntry("Parse frames", "pending"),)
    assert p.feed(user_results(tool_result("c1", "Task #1 created successfully: Parse frames"))) == []
    [plan] = p.feed(assistant(tool_use("c2", "TaskCreate", subject="Bench", description="..."), mid="m2", usage=None))
    p.feed(user_results(tool_result("c2", "Task #2 created successfully: Bench")))
    [plan] = p.feed(assistant(tool_use("u1", "TaskUpdate", taskId="1", status="in_progress"), mid="m3", usage=None))
    assert plan.entries == (PlanEntry("Parse frames", "in_progress"), PlanEntry("Bench", "pending"))
    assert p.feed(user_results(tool_result("u1", "Updated task #1 status"))) == []
    [plan] = p.feed(assistant(tool_use("u2", "TaskUpdate", taskId="2", status="deleted"), mid="m4", usage=None))
    assert plan.entries == (PlanEntry("Parse frames", "in_progress"),)
    # An id from before this process is ignored until TaskList brings the whole list back.
    assert p.feed(assistant(tool_use("u3", "TaskUpdate", taskId="9", status="completed"), mid="m5", usage=None)) == []
    assert p.feed(assistant(tool_use("l1", "TaskList"), mid="m6", usage=None)) == []
    [plan] = p.feed(user_results(tool_result("l1", "#1 [completed] Parse frames\n#9 [in_progress] Older task")))
    assert plan.entries == (PlanEntry("Parse frames", "completed"), PlanEntry("Older task", "in_progress"))


def test_failed_task_create_is_dropped():
    p = ClaudeParser()
    p.feed(assistant(tool_use("c1", "TaskCreate", subject="Oops", description=""), usage=None))
    [plan] = p.feed(user_results(tool_result("c1", "error", is_error=True)))
    assert plan.entries == ()


# --- user frames -----------------------------------------------------------------------------------------


def test_user_echo_plain_and_replayed():
    p = ClaudeParser()
    assert p.feed(line({"type": "user", "message": {"role": "user", "content": "hi"}, "isReplay": True})) == [
        UserEcho(text="hi")
    ]
    assert p.feed(line({"type": "user", "message": {"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>ignore</system-reminder>"}, {"type": "text", "text": "real"}]}})) == [
        UserEcho(text="real")
    ]


# --- partial messages ------------------------------------------------------------------------------------


def test_stream_events_give_partial_deltas_stamped_with_the_message_id():
    p = ClaudeParser()
    start = {"type": "message_start", "message": {"id": "m9", "usage": USAGE, "content": []}}
    events = feed_all(
        p,
        stream(start),
        stream({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        stream({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
        stream({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}}),
        stream({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hel"}}),
        stream({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "lo"}}),
        stream({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{"}}),
        assistant({"type": "text", "text": "Hello"}, mid="m9"),
        stream({"type": "content_block_stop", "index": 1}),
        stream({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 30}}),
        stream({"type": "message_stop"}),
        stream({"type": "ping"}),
    )
    assert events == [
        UsageUpdate(usage=TokenUsage(input=5, output=1, cache_read=100, cache_creation=20)),
        Thinking(text="hmm", message_id="m9", partial=True),
        AssistantText(text="Hel", message_id="m9", partial=True),
        AssistantText(text="lo", message_id="m9", partial=True),
        AssistantText(text="Hello", message_id="m9"),
    ]


def test_stream_message_ids_are_tracked_per_subagent():
    p = ClaudeParser()
    feed_all(p, stream({"type": "message_start", "message": {"id": "main"}}),
             stream({"type": "message_start", "message": {"id": "sub"}}, parent="task1"))
    [a] = p.feed(stream({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}}))
    [b] = p.feed(stream({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "y"}}, parent="task1"))
    assert (a.message_id, a.parent_tool_use_id) == ("main", None)
    assert (b.message_id, b.parent_tool_use_id) == ("sub", "task1")


# --- results -----------------------------------------------------------------------------------------------


def result_frame(**over: object) -> str:
    base = {"type": "result", "subtype": "success", "is_error": False, "duration_ms": 10, "num_turns": 1,
            "stop_reason": "end_turn", "total_cost_usd": 0.5, "result": "done",
            "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 5,
                      "cache_creation_input_tokens": 6}}
    base.update(over)
    return line(base)


def test_result_fields():
    [r] = ClaudeParser().feed(result_frame(stop_reason="max_tokens"))
    assert r == TurnResult(stop_reason="max_tokens", usage=TokenUsage(3, 4, 5, 6), cost_usd=0.5, duration_ms=10,
                           num_requests=1)


def test_result_errors():
    [r] = ClaudeParser().feed(result_frame(subtype="error_during_execution", is_error=True, stop_reason=None,
                                           errors=["API Error: 400 bad", "again"]))
    assert (r.stop_reason, r.is_error, r.error) == ("error", True, "API Error: 400 bad; again")
    [r] = ClaudeParser().feed(result_frame(subtype="error_max_turns", is_error=True, stop_reason=None))
    assert (r.stop_reason, r.is_error, r.error) == ("max_turn_requests", True, "done")
    [r] = ClaudeParser().feed(result_frame(subtype="success", is_error=True, stop_reason=None,
                                           result="Credit balance is too low"))
    assert (r.stop_reason, r.error) == ("error", "Credit balance is too low")


@pytest.mark.parametrize("terminal", ["aborted_streaming", "aborted_tools"])
def test_result_aborted_is_cancelled(terminal: str):
    [r] = ClaudeParser().feed(result_frame(subtype="error_during_execution", is_error=True, stop_reason=None,
                                           terminal_reason=terminal))
    assert (r.stop_reason, r.is_error, r.error) == ("cancelled", False, None)


def test_acknowledged_interrupt_makes_error_during_execution_cancelled():
    p = ClaudeParser()
    frame = result_frame(subtype="error_during_execution", is_error=True, stop_reason=None)
    [plain] = ClaudeParser().feed(frame)
    assert plain.stop_reason == "error"
    p.interrupt_sent("int-7")
    assert p.feed(line({"type": "control_response", "response": {"subtype": "success", "request_id": "int-7"}})) == []
    [r] = p.feed(frame)
    assert r.stop_reason == "cancelled" and not r.is_error
    [again] = p.feed(frame)  # the mark is per turn
    assert again.stop_reason == "error"


def test_cost_is_per_turn_although_the_wire_is_cumulative():
    p = ClaudeParser()
    costs = [p.feed(result_frame(total_cost_usd=c))[0].cost_usd for c in (0.25, 0.25, 1.0, 0.1)]
    assert costs == pytest.approx([0.25, 0.0, 0.75, 0.1])


# --- system, control, misc ------------------------------------------------------------------------------------


def test_system_frames():
    p = ClaudeParser()
    [init] = p.feed(line({"type": "system", "subtype": "init", "session_id": "abc", "model": "opus",
                          "claude_code_version": "2.1.197", "tools": ["Bash", 3, "mcp__aegis__aegis_meta"]}))
    assert init == SystemInit(session_id="abc", model="opus", version="2.1.197",
                              tools=("Bash", "mcp__aegis__aegis_meta"))
    assert p.session_id == "abc"
    assert p.feed(line({"type": "system", "subtype": "compact_boundary",
                        "compact_metadata": {"trigger": "auto", "pre_tokens": 150000, "post_tokens": 20000}})) == [
        CompactBoundary(trigger="auto", pre_tokens=150000, post_tokens=20000)
    ]
    for subtype in ("status", "hook_started", "task_progress", "thinking_tokens"):
        assert p.feed(line({"type": "system", "subtype": subtype})) == []
    [unknown] = p.feed(line({"type": "system", "subtype": "brand_new"}))
    assert isinstance(unknown, Unknown) and "brand_new" in unknown.reason


def test_quiet_frames():
    p = ClaudeParser()
    assert p.feed(line({"type": "rate_limit_event", "rate_limit_info": {}})) == []
    assert p.feed(line({"type": "control_response", "response": {"subtype": "success", "request_id": "x"}})) == []
    assert p.feed(line({"type": "control_cancel_request", "request_id": "x"})) == []


def test_can_use_tool_becomes_a_permission_request():
    p = ClaudeParser()
    frame = {"type": "control_request", "request_id": "req-1", "request": {
        "subtype": "can_use_tool", "tool_name": "Bash", "input": {"command": "rm -rf build"},
        "permission_suggestions": [], "tool_use_id": "toolu_1"}}
    assert p.feed(line(frame)) == [PermissionRequest(
        request_id="req-1", tool_name="Bash", kind="execute", summary="rm -rf build",
        raw_input={"command": "rm -rf build"}, options=("allow", "deny"),
    )]
    assert p.permission_input("req-1") == {"command": "rm -rf build"}
    assert p.permission_input("req-1") is None


def test_unsupported_control_request_is_answered_with_an_error():
    p = ClaudeParser()
    [event] = p.feed(line({"type": "control_request", "request_id": "h1",
                           "request": {"subtype": "hook_callback", "callback_id": "c"}}))
    assert isinstance(event, Unknown) and "hook_callback" in event.reason
    assert p.outbox == [{"type": "control_response", "response": {
        "subtype": "error", "request_id": "h1", "error": "aegis does not support control_request 'hook_callback'"}}]


def test_control_error_response_is_visible():
    [event] = ClaudeParser().feed(line({"type": "control_response",
                                        "response": {"subtype": "error", "request_id": "i", "error": "nope"}}))
    assert isinstance(event, Unknown)


# --- garbage ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw,reason", [
    ("this is not json", "not JSON"),
    ('{"type": "assistant", "message": {"id": "m", "content": [{"type": "te', "not JSON"),
    ("[1, 2, 3]", "not an object"),
    ('"just a string"', "not an object"),
    ('{"type": "surprise", "x": 1}', "unknown frame type 'surprise'"),
    ('{"no_type": true}', "unknown frame type None"),
    (b"\xff\xfe not utf-8", "not JSON"),
])
def test_garbage_becomes_unknown(raw, reason):
    [event] = ClaudeParser().feed(raw)
    assert isinstance(event, Unknown)
    assert reason in event.reason


def test_unknown_raw_is_truncated_to_2kb():
    [event] = ClaudeParser().feed('{"type": "surprise", "blob": "' + "z" * 100_000 + '"}')
    assert isinstance(event, Unknown) and len(event.raw) == 2048
    [event] = ClaudeParser().feed("y" * 50_000)
    assert len(event.raw) == 2048


def test_blank_lines_are_ignored():
    assert ClaudeParser().feed("") == [] and ClaudeParser().feed(b"  \r") == []


def _mutations(value: object):
    """Every frame obtained by replacing one nested value with a value of another type."""
    replacements = (None, 7, "s", [], {}, [None], True, -1.5)
    if isinstance(value, dict):
        for key in list(value):
            for rep in replacements:
                mutated = dict(value)
                mutated[key] = rep
                yield mutated
            for inner in _mutations(value[key]):
                mutated = dict(value)
                mutated[key] = inner
                yield mutated
    elif isinstance(value, list):
        for i, item in enumerate(value[:3]):
            for inner in _mutations(item):
                mutated = list(value)
                mutated[i] = inner
                yield mutated


def test_mangled_frames_never_raise():
    frames = [
        json.loads(assistant({"type": "thinking", "thinking": "t"}, {"type": "text", "text": "a"},
                             tool_use("e", "Edit", file_path="/a", old_string="x", new_string="y"))),
        json.loads(user_results(tool_result("e", [{"type": "text", "text": "ok"}]))),
        json.loads(stream({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}})),
        json.loads(stream({"type": "message_start", "message": {"id": "m", "usage": USAGE}})),
        json.loads(result_frame(errors=["e"], terminal_reason="completed")),
        {"type": "system", "subtype": "init", "session_id": "s", "tools": ["a"], "model": "m"},
        {"type": "system", "subtype": "compact_boundary", "compact_metadata": {"trigger": "auto", "pre_tokens": 1}},
        {"type": "control_request", "request_id": "r", "request": {"subtype": "can_use_tool", "tool_name": "Bash",
                                                                   "input": {"command": "x"}}},
        json.loads(assistant(tool_use("todo", "TodoWrite", todos=[{"content": "a", "status": "pending"}]))),
        json.loads(assistant(tool_use("tc", "TaskUpdate", taskId="1", status="completed", subject="s"))),
    ]
    count = 0
    for frame in frames:
        for mutated in _mutations(copy.deepcopy(frame)):
            p = ClaudeParser()
            events = p.feed(json.dumps(mutated))
            assert isinstance(events, list)
            bugs = [e for e in events if isinstance(e, Unknown) and e.reason.startswith("codec error")]
            assert not bugs, (bugs, mutated)
            count += 1
    assert count > 500


# --- writers -------------------------------------------------------------------------------------------------------


def test_writers():
    assert codec.user_turn("hello\nworld") == {
        "type": "user", "message": {"role": "user", "content": "hello\nworld"}, "parent_tool_use_id": None,
        "session_id": "",
    }
    encoded = codec.encode(codec.user_turn("hello\nworld ✓"))
    assert "\n" not in encoded and json.loads(encoded)["message"]["content"] == "hello\nworld ✓"
    assert codec.interrupt_request("int-1") == {
        "type": "control_request", "request_id": "int-1", "request": {"subtype": "interrupt"}}
    assert codec.initialize_request("init-1") == {
        "type": "control_request", "request_id": "init-1", "request": {"subtype": "initialize", "hooks": None}}
    assert codec.permission_response("r1", True, {"command": "ls"}) == {
        "type": "control_response", "response": {"subtype": "success", "request_id": "r1",
                                                 "response": {"behavior": "allow", "updatedInput": {"command": "ls"}}}}
    denied = codec.permission_response("r2", False, message="not on my watch")
    assert denied["response"]["response"] == {"behavior": "deny", "message": "not on my watch"}
    assert codec.permission_response("r3", False)["response"]["response"]["message"]
    assert codec.control_error("r4", "no")["response"] == {"subtype": "error", "request_id": "r4", "error": "no"}


@pytest.mark.parametrize("over", [
    {"subtype": None}, {"subtype": ""}, {"subtype": 7}, {"is_error": None}, {"is_error": "false"}])
def test_a_malformed_result_frame_never_counts_as_a_successful_turn(over):
    """Issue 12 finding 15: a ``result`` frame without a string subtype and a boolean is_error ends
    the turn as an error naming the frame, not as another successful turn."""
    frame = json.loads(result_frame(**over))
    frame = {k: v for k, v in frame.items() if v is not None}
    [r] = ClaudeParser().feed(json.dumps(frame))
    assert r.is_error and r.stop_reason == "error"
    assert r.error.startswith("malformed result frame") and r.cost_usd is None
    [bare] = ClaudeParser().feed('{"type": "result"}')
    assert bare.is_error and bare.stop_reason == "error"
