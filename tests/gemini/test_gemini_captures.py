"""Golden tests: every Gemini CLI capture (tests/gemini/data, copied from ../shared/reference/captures)
through the real GeminiDriver — spawn, ACP client, codec, usage mapping, load-replay handling — against
``capture_agent.py`` playing the captured agent side, and through the codec + the driver's usage hook."""

from __future__ import annotations

from pathlib import Path

import pytest
from aegis_gemini.driver import GeminiDriver
from aegis_kernel.events import (
    AssistantText,
    PermissionRequest,
    SystemInit,
    TokenUsage,
    ToolResult,
    ToolUse,
    TurnResult,
    UserEcho,
)

from capture_replay import load, loaded_session, replay, translate

DATA = Path(__file__).parent / "data"
SID_HELLO = "28dac188-8ba6-46b4-b465-7a3388220998"
SID_MCP = "934e0b35-264e-496f-b19d-68dafa9c15a2"
SID_CANCEL = "95208eb3-bd0e-4c5d-9467-265c4cfdbee8"
OPTIONS = ("proceed_always_server", "proceed_always_tool", "proceed_once", "cancel")
ONE = TokenUsage(input=111, output=22)  # _meta.quota.token_count: promptTokenCount (cache inside), output
TWO = TokenUsage(input=222, output=44)  # a tool round trip: two requests summed by Gemini


def init(sid: str) -> SystemInit:
    return SystemInit(session_id=sid, model="gemini-2.5-flash", version="0.61.0")


def end(usage: TokenUsage | None = ONE, reason: str = "end_turn") -> TurnResult:
    return TurnResult(stop_reason=reason, usage=usage)


def tool(call_id: str, title: str, args: dict, result: str, request_id: str) -> list:
    return [
        PermissionRequest(request_id=request_id, tool_name=title, kind="other", summary=title, raw_input=args,
                          options=OPTIONS),
        ToolUse(tool_call_id=call_id, name=title, kind="other", summary=title, raw_input=args),
        ToolResult(tool_call_id=call_id, text=result, kind="other"),
    ]


def history_first(records: list[dict]) -> list[dict]:
    """The load capture's client sent its prompt the same millisecond the load reply came, so the
    capture interleaves Gemini's history replay (which does not wait for it) with the new turn.
    Played back, the prompt is sent after the replay, as a client that lets the load settle does."""
    out = [r for r in records if not (r["dir"] == "out" and r["msg"].get("method") == "session/prompt")]
    prompt = next(r for r in records if r["dir"] == "out" and r["msg"].get("method") == "session/prompt")
    last_chunk = max(i for i, r in enumerate(out) if r["msg"].get("params", {}).get("update", {})
                     .get("sessionUpdate") == "agent_message_chunk")
    return out[:last_chunk] + [prompt] + out[last_chunk:]


GOLDEN = {
    "gemini_acp_hello.jsonl": [init(SID_HELLO), AssistantText("FAKE_REPLY to: hello"), end()],
    "gemini_acp_mcp.jsonl": [
        init(SID_MCP),
        *tool("mcp_fake_echo__mcp_fake_echo_1795502718428_0", "echo (fake MCP Server)", {"text": "hi there"},
              "ECHO:hi there", "0"),
        AssistantText('FAKE_DONE tool_result={"output": "<untrusted_context>\\nECHO:hi there\\n</untrusted_context>"}'),
        end(TWO),
        *tool("mcp_fakestdio_add__mcp_fakestdio_add_1795502718553_0", "add (fakestdio MCP Server)", {"a": 2, "b": 3},
              "5", "1"),
        AssistantText('FAKE_DONE tool_result={"output": "<untrusted_context>\\n5\\n</untrusted_context>"}'),
        end(TWO),
    ],
    "gemini_acp_cancel.jsonl": [
        init(SID_CANCEL), AssistantText("slow0 "), end(None, "cancelled"),  # Gemini reports no usage then
        AssistantText("FAKE_REPLY to: after cancel"), end(),
    ],
    # SystemInit comes after the replayed history (the kernel drops what precedes it on resume)
    "gemini_acp_load.jsonl": [
        UserEcho("<session_context>…"), UserEcho("hello"), AssistantText("FAKE_REPLY to: hello"),
        init(SID_HELLO), AssistantText("FAKE_REPLY to: again"), end(),
    ],
}


def test_every_gemini_capture_has_a_golden():
    assert sorted(p.name for p in DATA.glob("gemini_*.jsonl")) == sorted(GOLDEN)


@pytest.mark.trio
@pytest.mark.parametrize("name", sorted(GOLDEN))
async def test_capture_through_the_driver(name, tmp_path):
    records = load(DATA / name)
    resume = loaded_session(records)
    if resume:
        records = history_first(records)
    events, replies = await replay(GeminiDriver(), records, tmp_path, resume_id=resume,
                                   env={"GEMINI_CLI_HOME": str(tmp_path / "home")})
    assert events == GOLDEN[name]
    # permission requests were answered by option kind (allow once), like the captured client did
    assert [r["result"] for r in replies] == [
        r["msg"]["result"] for r in records if r["dir"] == "out" and "result" in r["msg"]]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_capture_through_the_codec_and_usage_hook(name):
    """Sans-I/O: every agent frame parses; every prompt result maps to the golden usage."""
    events, usages = translate(GeminiDriver(), load(DATA / name))
    assert usages == [e.usage for e in GOLDEN[name] if isinstance(e, TurnResult)]
    assert not [e for e in events if type(e).__name__ == "Unknown"]
