"""Issue 12 finding 9: agent output is bounded. A frame over the cap fails the session with a clear error
(the agent is stopped, nothing huge is held), and a huge tool result keeps only a tail in memory while the
transcript file keeps it whole. Real sessions in a real kernel, over the wire-level fake ACP agent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from aegis_kernel import sessions as sessions_mod

FAKE = Path(__file__).parent.parent / "acp" / "fake_acp_agent.py"


@pytest.fixture
def acp_fake(write_config):
    write_config(f"""\
        default_agent: fake
        plugins:
          disabled: [mcp]
        agents:
          fake:
            provider: acp
            command: [{json.dumps(sys.executable)}, {json.dumps(str(FAKE))}]
        """)


def steps(*items: dict) -> str:
    return json.dumps(list(items))


@pytest.mark.trio
async def test_a_frame_over_the_cap_fails_the_session_saying_so(acp_fake, kernel, monkeypatch):
    monkeypatch.setattr("aegis_kernel.process.MAX_FRAME_BYTES", 64 * 1024)
    session = await kernel.sessions.spawn(handle="flood", prompt=steps({"raw": "x" * (1024 * 1024)}))
    await session.wait_for(lambda s: s.state == "error")
    assert "larger than the 64 KiB limit" in session.error
    assert "pid" in session.error and "the session was stopped" in session.error
    await session.wait_for(lambda s: s._proc is not None and s._proc.proc.returncode is not None)


@pytest.mark.trio
async def test_a_huge_tool_result_keeps_a_tail_in_memory_and_all_of_it_in_the_transcript(acp_fake, kernel):
    big = "".join(f"line {i}\n" for i in range(40_000))  # ~380 KB
    assert len(big) > 4 * sessions_mod.HISTORY_TEXT_KEEP
    session = await kernel.sessions.spawn(handle="bigtool", prompt=steps(
        {"update": {"sessionUpdate": "tool_call", "toolCallId": "t1", "title": "Read big", "kind": "read",
                    "status": "in_progress"}},
        {"update": {"sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "completed",
                    "content": [{"type": "content", "content": {"type": "text", "text": big}}]}}))
    await session.wait_for(lambda s: s.metrics.turns == 1)
    [kept] = [e for e in session.history if type(e).__name__ == "ToolResult"]
    assert len(kept.text) < sessions_mod.HISTORY_TEXT_KEEP + 200
    assert kept.text.endswith("line 39999\n") and kept.text.startswith("… (")
    transcript = Path(session.info()["transcript"]).read_text()
    records = [json.loads(line) for line in transcript.splitlines()]
    [whole] = [r["event"] for r in records if r["event"].get("t") == "ToolResult"]
    assert whole["text"] == big
