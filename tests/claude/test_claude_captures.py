"""Golden tests: every real Claude Code capture (tests/claude/data/*.jsonl) parsed into events.

The captures come from `claude` 2.1.197 driven against the fake model server (claude_*.jsonl) and from
2.1.143 against the real API (claude_fixture_*.jsonl, redacted: their usage, cost, tools and
parent_tool_use_id fields hold the string "<redacted>").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aegis_claude.codec import INTERRUPTED_MARKER, ClaudeParser
from aegis_kernel.events import (
    AssistantText,
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

DATA = Path(__file__).parent / "data"
CAPTURES = sorted(DATA.glob("claude_*.jsonl"))
REQUEST = TokenUsage(input=111, output=1, cache_read=7, cache_creation=3)  # message_start snapshot
ONE_REQUEST_TURN = TokenUsage(input=111, output=22, cache_read=7, cache_creation=3)
TWO_REQUEST_TURN = TokenUsage(input=222, output=44, cache_read=14, cache_creation=6)


def parse(name: str) -> list[object]:
    parser = ClaudeParser()
    events: list[object] = []
    with open(DATA / name, "rb") as fh:
        for line in fh:
            events.extend(parser.feed(line.rstrip(b"\n")))
    return events


def turns(events: list[object]) -> list[list[object]]:
    """Split an event list after each TurnResult."""
    out: list[list[object]] = [[]]
    for event in events:
        out[-1].append(event)
        if isinstance(event, TurnResult):
            out.append([])
    return [t for t in out if t]


def of(events: list[object], cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


def test_all_captures_are_present():
    assert {p.name for p in CAPTURES} == {
        "claude_fixture_stream_text.jsonl", "claude_fixture_stream_tool.jsonl", "claude_hello.jsonl",
        "claude_interrupt.jsonl", "claude_mcp.jsonl", "claude_multiturn.jsonl", "claude_resume.jsonl",
        "claude_sigint.jsonl",
    }


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_every_capture_parses_cleanly(path: Path):
    events = parse(path.name)
    assert not of(events, Unknown), of(events, Unknown)
    results = sum(1 for line in path.read_text().splitlines() if '"type": "result"' in line or '"type":"result"' in line)
    assert len(of(events, TurnResult)) == results >= 1
    assert isinstance(events[0], SystemInit)
    assert isinstance(events[-1], TurnResult)
    # One UsageUpdate per API request (assistant message id), never per frame.
    if not path.name.startswith("claude_fixture"):  # redacted usage there
        frames = [json.loads(line) for line in path.read_text().splitlines()]
        ids = {f["message"]["id"] for f in frames if f["type"] == "assistant"}
        assert len(of(events, UsageUpdate)) == len(ids)


def test_hello():
    events = parse("claude_hello.jsonl")
    init, usage, text, result = events
    assert init == SystemInit(
        session_id="9794ddb6-5cc2-40e9-8879-1473dbb910ec", model="claude-opus-4-8[1m]", version="2.1.197",
        tools=init.tools,
    )
    assert "Bash" in init.tools and "Write" in init.tools and len(init.tools) == 24
    assert usage == UsageUpdate(usage=REQUEST)
    assert text == AssistantText(text="FAKE_REPLY to: hello", message_id="msg_a9214cdc5ccd417c94a1")
    assert result.stop_reason == "end_turn" and not result.is_error
    assert result.usage == ONE_REQUEST_TURN
    assert result.usage.true_input == 121 and result.usage.cached_pct == 6
    assert result.cost_usd == pytest.approx(0.00112725)
    assert result.duration_ms == 83 and result.num_requests == 1 and result.error is None


def test_mcp_tool_round_trips():
    events = parse("claude_mcp.jsonl")
    first, second = turns(events)
    init = first[0]
    assert init.session_id == "71d68301-855c-4361-b5a9-bcb69917af51"
    assert {"mcp__fake__echo", "mcp__fakestdio__add"} <= set(init.tools)

    [use] = of(first, ToolUse)
    assert use == ToolUse(tool_call_id="toolu_f051d91451ca4e2f810e", name="mcp__fake__echo", kind="other",
                          summary="hi there", raw_input={"text": "hi there"})
    [result] = of(first, ToolResult)
    assert result == ToolResult(tool_call_id=use.tool_call_id, text='{"result":"ECHO:hi there"}', kind="other")
    assert [t.text for t in of(first, AssistantText)] == ['FAKE_DONE tool_result={"result":"ECHO:hi there"}']
    assert of(first, UsageUpdate) == [UsageUpdate(usage=REQUEST)] * 2  # two requests: call, then answer
    assert [type(e).__name__ for e in first] == [
        "SystemInit", "UsageUpdate", "ToolUse", "ToolResult", "UsageUpdate", "AssistantText", "TurnResult",
    ]
    end = first[-1]
    assert end.usage == TWO_REQUEST_TURN and end.num_requests == 2
    assert end.cost_usd == pytest.approx(0.0022545)

    [use2] = of(second, ToolUse)
    assert use2.name == "mcp__fakestdio__add" and use2.raw_input == {"a": 2, "b": 3} and use2.summary == ""
    assert of(second, ToolResult)[0].text == '{"result":"5"}'
    # total_cost_usd is cumulative over the process (0.004509 on the wire): the turn's own cost is reported.
    assert second[-1].usage == TWO_REQUEST_TURN
    assert second[-1].cost_usd == pytest.approx(0.0022545)


def test_interrupt_is_cancelled_and_the_process_goes_on():
    events = parse("claude_interrupt.jsonl")
    first, second = turns(events)
    texts = of(first, AssistantText)
    assert [(t.text, t.partial) for t in texts] == [("slow0 ", True), ("slow0 ", False)]
    assert texts[0].message_id == texts[1].message_id == "msg_a3a404d08be44128bc6d"
    assert UserEcho(text=INTERRUPTED_MARKER) in first
    end = first[-1]
    assert end.stop_reason == "cancelled"
    assert end.is_error is False and end.error is None
    assert end.usage == TokenUsage()  # the CLI reports zeros for an aborted turn
    assert of(first, UsageUpdate) == [UsageUpdate(usage=REQUEST)]  # message_start and assistant: once

    assert [(t.text, t.partial) for t in of(second, AssistantText)] == [
        ("FAKE_REPLY to: after interrupt", True), ("FAKE_REPLY to: after interrupt", False),
    ]
    assert second[-1].stop_reason == "end_turn" and second[-1].usage == ONE_REQUEST_TURN
    assert second[-1].cost_usd == pytest.approx(0.00112725)


def test_sigint_gives_the_same_cancelled_result():
    events = parse("claude_sigint.jsonl")
    assert of(events, AssistantText)[0].text == "slow0 slow1 slow2 slow3 slow4 slow5 "
    end = events[-1]
    assert end.stop_reason == "cancelled" and not end.is_error and end.duration_ms == 2594


def test_multiturn_one_process_two_results():
    events = parse("claude_multiturn.jsonl")
    first, second = turns(events)
    assert first[0].session_id == second[0].session_id == "712da241-6226-4845-a14d-8a96a53ed801"
    assert [t.text for t in of(first, AssistantText)] == ["FAKE_REPLY to: first"]
    assert [t.text for t in of(second, AssistantText)] == ["FAKE_REPLY to: second"]
    assert first[-1].usage == second[-1].usage == ONE_REQUEST_TURN
    assert first[-1].cost_usd == pytest.approx(second[-1].cost_usd)


def test_resume_keeps_the_session_id():
    hello = parse("claude_hello.jsonl")[0]
    resumed = parse("claude_resume.jsonl")
    assert resumed[0].session_id == hello.session_id
    assert of(resumed, AssistantText)[0].text == "FAKE_REPLY to: again"
    assert resumed[-1].usage == ONE_REQUEST_TURN


def test_redacted_fixture_text():
    events = parse("claude_fixture_stream_text.jsonl")
    init, echo, text, result = events
    assert init.model == "claude-opus-4-7[1m]" and init.version == "2.1.143" and init.tools == ()
    assert echo == UserEcho(text="Reply with exactly: hello from aegis")  # isReplay
    assert text.text == "hello from aegis" and text.message_id == "msg_01S1YaYzGvssKzsunFCsyPbs"
    assert result.stop_reason == "end_turn" and result.usage is None and result.cost_usd is None
    assert result.duration_ms == 3116 and result.num_requests == 1


def test_redacted_fixture_tool():
    events = parse("claude_fixture_stream_tool.jsonl")
    assert not of(events, Thinking)  # the only thinking block is empty (signature only)
    [use] = of(events, ToolUse)
    assert (use.name, use.kind, use.summary) == ("Bash", "execute", "echo hi")
    [result] = of(events, ToolResult)
    assert (result.tool_call_id, result.text, result.kind, result.is_error) == (use.tool_call_id, "hi", "execute", False)
    assert of(events, AssistantText)[-1].text == "hi"
    assert events[-1].num_requests == 2


def test_truncated_capture_lines_never_raise():
    parser = ClaudeParser()
    for path in CAPTURES:
        for line in path.read_bytes().splitlines():
            for cut in (1, len(line) // 3, len(line) // 2, len(line) - 1):
                events = parser.feed(line[:cut])
                assert len(events) == 1 and isinstance(events[0], Unknown)
                assert events[0].reason.startswith("not JSON")
