"""aegis queue log: rendering a worker's transcript records."""

from __future__ import annotations

from aegis_queue.cli import render_transcript


def rec(at, t, **fields):
    return {"ts": at, "handle": "w", "event": {"t": t, **fields}}


def test_a_message_is_one_line_and_previews_and_sub_agent_text_stay_out():
    lines = render_transcript([
        rec(0.0, "StateChanged", old="starting", new="ready", reason=""),
        rec(1.0, "EnvelopeReceived", envelope_id="e", sender="queue:q", body="do it", ts="t"),
        rec(2.0, "AssistantText", text="par", message_id="m1", partial=True),
        rec(2.0, "AssistantText", text="first ", message_id="m1"),
        rec(3.0, "AssistantText", text="noise", message_id="s", parent_tool_use_id="t0"),
        rec(4.0, "AssistantText", text="second", message_id="m1"),
        rec(5.0, "ToolUse", tool_call_id="t1", name="Read", summary="a.py"),
        rec(6.0, "ToolResult", tool_call_id="t1", text="x" * 400, is_error=True),
        rec(7.0, "TurnResult", stop_reason="end_turn", usage={"input": 10, "output": 5}),
        rec(8.0, "Mystery"),
    ])
    texts = [line.split("  ", 1)[1] for line in lines]
    assert texts[:4] == ["· starting → ready", "✉ from queue:q: do it", "first second", "⏺ Read a.py"]
    assert texts[4].startswith("  └ error: xxx") and texts[4].endswith("…") and len(texts[4]) < 320
    assert texts[5:] == ["= turn ended: end_turn · ↑10 ↓5", "· Mystery"]
    import time

    assert lines[2].startswith(time.strftime("%H:%M:%S", time.localtime(2.0)))  # the message's own time
    assert len(lines) == 7
