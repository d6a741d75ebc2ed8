"""The real ``claude`` binary (2.1.197) driven by aegis_claude against the fake model server.

Skipped with a visible reason when the binary is absent (``.ci/run`` installs it into
``~/.cache/aegis-ci/clis``); with ``AEGIS_REQUIRE_REAL_CLIS=1`` a missing binary is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import trio
from aegis_claude.agent import ClaudeAgentProcess
from aegis_claude.driver import ClaudeDriver
from aegis_kernel.drivers import SpawnSpec
from aegis_kernel.events import (
    AgentError,
    AssistantText,
    PermissionRequest,
    SystemInit,
    TokenUsage,
    ToolResult,
    ToolUse,
    TurnResult,
    UsageUpdate,
)
from aegis_testkit.fakemodel import FakeModelServer
from aegis_kernel.profiles import AgentProfile


def _find_claude() -> str | None:
    found = shutil.which("claude")
    if found:
        return found
    cache = os.environ.get("AEGIS_CLI_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "aegis-ci", "clis")
    candidate = Path(cache) / "claude" / "node_modules" / ".bin" / "claude"
    return str(candidate) if candidate.exists() else None


CLAUDE = _find_claude()
if CLAUDE is None and os.environ.get("AEGIS_REQUIRE_REAL_CLIS") == "1":
    raise RuntimeError("AEGIS_REQUIRE_REAL_CLIS=1 but the claude binary was not found")

pytestmark = [
    pytest.mark.real_cli,
    pytest.mark.skipif(CLAUDE is None, reason="real `claude` binary not installed (see .ci/run)"),
]
ONE_REQUEST = TokenUsage(input=111, output=22, cache_read=7, cache_creation=3)


@pytest.fixture
def fm():
    with FakeModelServer(slow_interval=0.1) as server:
        yield server


def claude_env(fm: FakeModelServer, home: Path) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": fm.url, "ANTHROPIC_API_KEY": "dummy", "CLAUDE_CONFIG_DIR": str(home),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
        "IS_SANDBOX": "1",  # bypassPermissions is refused as root otherwise
    }


def spec(fm: FakeModelServer, tmp_path: Path, permission: str = "full", resume_id: str | None = None) -> SpawnSpec:
    profile = AgentProfile(provider="claude-code", command=(CLAUDE,), permission=permission,
                           env=claude_env(fm, tmp_path / "cc-home"))
    return SpawnSpec(handle="brisk-curie", profile_name="cc", profile=profile, cwd=tmp_path, state_dir=tmp_path,
                     resume_id=resume_id, system_prompt="You are brisk-curie.")


async def turn(agent: ClaudeAgentProcess, text: str, *, interrupt_on_text: bool = False,
               allow: bool | None = None) -> list:
    await agent.prompt(text)
    events: list = []
    with trio.fail_after(60):
        async for event in agent.events():
            events.append(event)
            if interrupt_on_text and isinstance(event, AssistantText) and event.partial:
                await agent.interrupt()
                interrupt_on_text = False
            if isinstance(event, PermissionRequest) and allow is not None:
                await agent.answer_permission(event.request_id, allow)
            if isinstance(event, (TurnResult, AgentError)):
                return events
    raise AssertionError(f"no TurnResult: {events}")


@pytest.mark.trio
async def test_plain_turns_interrupt_and_usage(fm, tmp_path):
    driver = ClaudeDriver()
    s = spec(fm, tmp_path)
    async with trio.open_nursery() as nursery:
        agent = await driver.start(s, driver.build_launch(s), nursery)
        events = await turn(agent, "hello")
        init = events[0]
        assert isinstance(init, SystemInit) and init.version == "2.1.197" and agent.session_id == init.session_id
        assert [e.text for e in events if isinstance(e, AssistantText) and not e.partial] == ["FAKE_REPLY to: hello"]
        assert any(isinstance(e, AssistantText) and e.partial for e in events)  # token streaming is on
        assert [e.usage for e in events if isinstance(e, UsageUpdate)] == [
            TokenUsage(input=111, output=1, cache_read=7, cache_creation=3)]
        assert events[-1].usage == ONE_REQUEST and events[-1].stop_reason == "end_turn"

        events = await turn(agent, "be SLOW", interrupt_on_text=True)
        assert (events[-1].stop_reason, events[-1].is_error) == ("cancelled", False)
        fm.wait_for_event("client_disconnected", timeout=10)

        events = await turn(agent, "after interrupt")
        assert events[-1].stop_reason == "end_turn"
        assert [e.text for e in events if isinstance(e, AssistantText) and not e.partial] == [
            "FAKE_REPLY to: after interrupt"]
        assert events[-1].cost_usd == pytest.approx(0.00112725)  # per turn
        await agent.close(grace=2)
    req = fm.requests[0]
    assert req.api == "anthropic" and req.last_user_text == "hello"
    assert "You are brisk-curie." in str(req.body.get("system"))  # --append-system-prompt


@pytest.mark.trio
async def test_resume_replays_the_history_to_the_model(fm, tmp_path):
    driver = ClaudeDriver()
    s = spec(fm, tmp_path)
    async with trio.open_nursery() as nursery:
        agent = await driver.start(s, driver.build_launch(s), nursery)
        await turn(agent, "first")
        session_id = agent.session_id
        await agent.close(grace=2)
        s2 = spec(fm, tmp_path, resume_id=session_id)
        agent = await driver.start(s2, driver.build_launch(s2), nursery)
        events = await turn(agent, "second")
        assert events[0].session_id == session_id
        await agent.close(grace=2)
    last = fm.requests[-1]
    assert last.has_history and last.user_texts[-2:] == ("first", "second")


@pytest.mark.trio
@pytest.mark.parametrize("allow", [True, False])
async def test_brokered_permission(fm, tmp_path, allow):
    driver = ClaudeDriver()
    s = spec(fm, tmp_path, permission="write")
    target = tmp_path / "made_by_python"
    command = f"{sys.executable} -c \"open('{target}', 'w')\""
    async with trio.open_nursery() as nursery:
        agent = await driver.start(s, driver.build_launch(s), nursery)
        events = await turn(agent, "CALL_TOOL Bash " + json.dumps({"command": command}), allow=allow)
        await agent.close(grace=2)
    [request] = [e for e in events if isinstance(e, PermissionRequest)]
    assert (request.tool_name, request.kind) == ("Bash", "execute") and request.raw_input["command"] == command
    [use] = [e for e in events if isinstance(e, ToolUse)]
    [result] = [e for e in events if isinstance(e, ToolResult)]
    assert result.tool_call_id == use.tool_call_id
    assert target.exists() is allow
    assert result.is_error is (not allow)


CONFIG = """\
default_agent: cc
agents:
  cc:
    provider: claude-code
    permission: write
    command: [{claude}]
    env: {env}
"""


@pytest.mark.trio
async def test_aegis_mcp_tool_through_the_kernel(fm, tmp_path, write_config, make_kernel):
    write_config(CONFIG.format(claude=CLAUDE, env=json.dumps(claude_env(fm, tmp_path / "cc-home"))))
    async with make_kernel() as kernel:
        if not kernel.mcp_base_url:
            pytest.skip("the MCP plane (aegis-mcp) is not installed")
        session = await kernel.sessions.spawn(prompt="CALL_TOOL aegis_list_sessions {}")
        await session.wait_for(lambda s: s.metrics.turns >= 1 or s.state == "error", timeout=60)
        assert session.state == "ready", session.state
        assert session.final_text.startswith("FAKE_DONE tool_result=")
        assert session.handle in session.final_text
        assert session.metrics.tool_calls == 1
        await kernel.sessions.close(session.handle)
    tool_requests = [r for r in fm.requests if r.decision.startswith("tool:")]
    assert tool_requests[0].decision == "tool:mcp__aegis__aegis_list_sessions"
