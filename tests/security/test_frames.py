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


@pytest.fixture
def resumable_acp_fake(write_config):
    caps = json.dumps({"sessionCapabilities": {"resume": {}}})
    write_config(f"""\
        default_agent: fake
        plugins:
          disabled: [mcp]
        agents:
          fake:
            provider: acp
            command: [{json.dumps(sys.executable)}, {json.dumps(str(FAKE))}]
            env: {{FAKE_ACP_CAPS: {json.dumps(caps)}}}
        """)


@pytest.mark.trio
async def test_a_reply_to_an_unknown_id_fails_the_session_resumably(resumable_acp_fake, kernel):
    """Issue 12 finding 10: not stuck in ``working`` — ``error`` with a clear message, and the session
    comes back with ``resume``."""
    session = await kernel.sessions.spawn(handle="confused", prompt=steps(
        {"send": {"jsonrpc": "2.0", "id": 999, "result": {"stopReason": "end_turn"}}}, {"hang": True}))
    await session.wait_for(lambda s: s.state == "error")
    assert "protocol error" in session.error and "request id 999" in session.error
    saved = {"agent": session.profile_name, "resume_id": session.driver_session_id, "log_id": session.log_id}
    await session.close()
    again = await kernel.sessions.spawn(saved["agent"], handle="confused", resume_id=saved["resume_id"],
                                        log_id=saved["log_id"], prompt=steps({"update": {
                                            "sessionUpdate": "agent_message_chunk",
                                            "content": {"type": "text", "text": "back"}}}))
    await again.wait_for(lambda s: s.metrics.turns == 1)
    assert again.state == "ready" and again.final_text == "back"


@pytest.mark.trio
async def test_interrupt_gets_a_session_out_of_a_turn_its_agent_never_ends(acp_fake, kernel, monkeypatch):
    from aegis_acp.agent import AcpAgentProcess

    monkeypatch.setattr(AcpAgentProcess, "interrupt_grace", 0.2)
    session = await kernel.sessions.spawn(handle="stuck", prompt=steps({"hang": True}))
    await session.wait_for(lambda s: s.state == "working")
    session.interrupt()
    await session.wait_for(lambda s: s.state == "ready")
    [result] = [e for e in session.history if type(e).__name__ == "TurnResult"]
    assert result.stop_reason == "cancelled" and "did not end its turn" in result.error
