"""Golden tests: every OpenCode capture (tests/opencode/data, copied from ../shared/reference/captures)
through the real OpenCodeDriver against ``capture_agent.py`` playing the captured agent side, and
through the codec + the driver's usage hook."""

from __future__ import annotations

from pathlib import Path

import pytest
from aegis_kernel.events import (
    AssistantText,
    SystemInit,
    TokenUsage,
    ToolResult,
    ToolUse,
    TurnResult,
    UsageUpdate,
    UserEcho,
)
from aegis_opencode.driver import OpenCodeDriver

from capture_replay import load, loaded_session, replay, translate

DATA = Path(__file__).parent / "data"
SID_HELLO = "ses_df3b1cd8affewgE1vHhqOdXJru"
SID_MCP = "ses_df3b1f7b3ffellqTpft756CzCP"
SID_CANCEL = "ses_df3b1e112ffeTlBhERtNZ3f7SD"
# prompt result usage {inputTokens 104, outputTokens 22, totalTokens 133, cachedReadTokens 7}: OpenCode's
# inputTokens is prompt_tokens (111) minus the cached 7, which is exactly TokenUsage.input (uncached)
ONE = TokenUsage(input=104, output=22, cache_read=7)
CTX = UsageUpdate(context_used=111, context_size=100_000, cost_usd=0.0)  # usage_update {used, size, cost}


def init(sid: str) -> SystemInit:
    return SystemInit(session_id=sid, model="fake/fake-model", version="1.18.33")


def end(usage: TokenUsage = ONE, reason: str = "end_turn") -> TurnResult:
    return TurnResult(stop_reason=reason, usage=usage)


def text(value: str, message_id: str) -> AssistantText:
    return AssistantText(value, message_id=message_id)


def tool(call_id: str, name: str, args: dict, result: str) -> list:
    return [ToolUse(tool_call_id=call_id, name=name, kind="other", summary=name, raw_input=args),
            ToolResult(tool_call_id=call_id, text=result, kind="other")]


SLOW_MSG = "msg_20c4e1f43001I4k6f05ILQnScn"
GOLDEN = {
    "opencode_acp_hello.jsonl": [init(SID_HELLO), text("FAKE_REPLY to: hello", "msg_20c4e32bb0010bSqD5ZLwHwb47"),
                                 CTX, end()],
    "opencode_acp_mcp.jsonl": [
        init(SID_MCP),
        # the pending tool_call has an empty rawInput; the codec waits one frame for the input
        *tool("call_4fd6f577fff742c1a3d6", "fake_echo", {"text": "hi there"}, "ECHO:hi there"),
        text("FAKE_DONE tool_result=ECHO:hi there", "msg_20c4e11b0001RvdvU9T1QRGrB4"), CTX, end(),
        *tool("call_5f1e9b4a3321495a9e0f", "fakestdio_add", {"a": 2, "b": 3}, "5"),
        text("FAKE_DONE tool_result=5", "msg_20c4e12c90011HsoPEzxbVoxEf"), CTX, end(),
    ],
    "opencode_acp_cancel.jsonl": [
        init(SID_CANCEL), text("slow0 ", SLOW_MSG), text("slow1 ", SLOW_MSG), text("slow2 ", SLOW_MSG),
        UsageUpdate(context_used=0, context_size=100_000, cost_usd=0.0), end(TokenUsage(), "cancelled"),
        text("FAKE_REPLY to: after cancel", "msg_20c4e26f3001CEZTA7QmVHQ1kJ"), CTX, end(),
    ],
    # OpenCode replays the history before answering session/load: SystemInit follows it
    "opencode_acp_load.jsonl": [
        UserEcho("hello"), text("FAKE_REPLY to: hello", "msg_20c4e32bb0010bSqD5ZLwHwb47"), init(SID_HELLO),
        text("FAKE_REPLY to: again", "msg_20c4e425e001WjxNujw60H9jRp"), CTX, end(),
    ],
}


def test_every_opencode_capture_has_a_golden():
    assert sorted(p.name for p in DATA.glob("opencode_*.jsonl")) == sorted(GOLDEN)


@pytest.mark.trio
@pytest.mark.parametrize("name", sorted(GOLDEN))
async def test_capture_through_the_driver(name, tmp_path):
    records = load(DATA / name)
    resume = loaded_session(records)
    events, replies = await replay(OpenCodeDriver(), records, tmp_path, resume_id=resume)
    assert events == GOLDEN[name]
    assert replies == []  # OpenCode runs MCP tools without asking


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_capture_through_the_codec_and_usage_hook(name):
    events, usages = translate(OpenCodeDriver(), load(DATA / name))
    assert usages == [e.usage for e in GOLDEN[name] if isinstance(e, TurnResult)]
    assert [e for e in events if isinstance(e, UsageUpdate)] == [e for e in GOLDEN[name] if isinstance(e, UsageUpdate)]
    assert not [e for e in events if type(e).__name__ == "Unknown"]
