"""aegis_claude.driver with a real subprocess (tests/claude/fake_claude.py speaks the captured frames),
directly and through the kernel's sessions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio
from aegis_claude.agent import ClaudeAgentProcess
from aegis_claude.driver import ClaudeDriver
from aegis_claude.plugin import aegis_register_drivers
from aegis_kernel.drivers import McpEndpoint, SpawnSpec
from aegis_kernel.events import (
    AgentError,
    AssistantText,
    PermissionRequest,
    SystemInit,
    TokenUsage,
    ToolResult,
    ToolUse,
    TurnResult,
    Unknown,
    UsageUpdate,
)
from aegis_kernel.process import SpawnFailed
from aegis_kernel.profiles import AgentProfile

FAKE = str(Path(__file__).parent / "fake_claude.py")


def spec(tmp_path: Path, **profile: object) -> SpawnSpec:
    profile.setdefault("provider", "claude-code")
    profile.setdefault("command", (sys.executable, FAKE))
    profile.setdefault("permission", "full")
    resume = profile.pop("resume_id", None)
    return SpawnSpec(handle="brisk-curie", profile_name="coder", profile=AgentProfile(**profile), cwd=tmp_path,
                     state_dir=tmp_path, resume_id=resume)


async def until_result(agent: ClaudeAgentProcess, events: list) -> TurnResult:
    with trio.fail_after(10):
        async for event in agent.events():
            events.append(event)
            if isinstance(event, (TurnResult, AgentError)):
                return event
    raise AssertionError(f"stream ended without a TurnResult: {events}")


def test_plugin_registers_the_driver():
    registered: list = []
    aegis_register_drivers(registered.append)
    [driver] = registered
    assert isinstance(driver, ClaudeDriver) and driver.name == "claude-code" and driver.supports_resume


def test_build_launch(tmp_path):
    launch = ClaudeDriver().build_launch(spec(tmp_path, model="opus"))
    assert launch.argv[:3] == (sys.executable, FAKE, "-p")
    assert ("--model", "opus") == launch.argv[launch.argv.index("--model"):launch.argv.index("--model") + 2]
    assert launch.env["CLAUDE_CODE_ENTRYPOINT"] == "sdk-py" and launch.cwd == tmp_path


@pytest.mark.trio
async def test_turns_usage_session_id_and_clean_close(tmp_path):
    driver = ClaudeDriver()
    s = spec(tmp_path, model="opus")
    async with trio.open_nursery() as nursery:
        agent = await driver.start(s, driver.build_launch(s), nursery)
        await agent.prompt("hello")
        events: list = []
        end = await until_result(agent, events)
        init = events[0]
        assert isinstance(init, SystemInit) and init.model == "opus" and agent.session_id == init.session_id
        assert [(e.text, e.partial) for e in events if isinstance(e, AssistantText)] == [
            ("FAKE_REPLY", True), (" to: hello", True), ("FAKE_REPLY to: hello", False)]
        assert [e for e in events if isinstance(e, UsageUpdate)] == [
            UsageUpdate(usage=TokenUsage(input=111, output=1, cache_read=7, cache_creation=3))]
        assert end.usage == TokenUsage(input=111, output=22, cache_read=7, cache_creation=3)
        await agent.prompt("again")
        events = []
        end = await until_result(agent, events)
        assert end.cost_usd == pytest.approx(0.001)  # per turn, although the wire total is 0.002
        assert not agent.turn_running
        await agent.close(grace=1)
        assert agent.proc.returncode == 0  # stdin EOF was enough
        assert [e async for e in agent.events()] == []


@pytest.mark.trio
async def test_resume_passes_the_id(tmp_path):
    driver = ClaudeDriver()
    s = spec(tmp_path, resume_id="9794ddb6-5cc2-40e9-8879-1473dbb910ec")
    async with trio.open_nursery() as nursery:
        agent = await driver.start(s, driver.build_launch(s), nursery)
        assert agent.session_id == "9794ddb6-5cc2-40e9-8879-1473dbb910ec"
        await agent.prompt("hi")
        events: list = []
        await until_result(agent, events)
        assert events[0].session_id == "9794ddb6-5cc2-40e9-8879-1473dbb910ec"
        await agent.close(grace=1)


@pytest.mark.trio
async def test_interrupt_cancels_and_the_process_goes_on(tmp_path):
    driver = ClaudeDriver()
    s = spec(tmp_path)
    async with trio.open_nursery() as nursery:
        agent = await driver.start(s, driver.build_launch(s), nursery)
        await agent.interrupt()  # idle: nothing is written
        await agent.prompt("SLOW")
        events: list = []
        with trio.fail_after(10):
            async for event in agent.events():
                events.append(event)
                if isinstance(event, AssistantText) and event.partial:
                    break
        await agent.interrupt()
        end = await until_result(agent, events)
        assert (end.stop_reason, end.is_error) == ("cancelled", False)
        await agent.prompt("after interrupt")
        end = await until_result(agent, events)
        assert end.stop_reason == "end_turn"
        assert events[-2].text == "FAKE_REPLY to: after interrupt"
        await agent.close(grace=1)


@pytest.mark.trio
@pytest.mark.parametrize("allow", [True, False])
async def test_permission_round_trip(tmp_path, allow):
    driver = ClaudeDriver()
    s = spec(tmp_path, permission="write")
    launch = driver.build_launch(s)
    assert "--permission-prompt-tool" in launch.argv
    async with trio.open_nursery() as nursery:
        agent = await driver.start(s, launch, nursery)
        await agent.prompt("TOOL make test")
        events: list = []
        with trio.fail_after(10):
            async for event in agent.events():
                events.append(event)
                if isinstance(event, PermissionRequest):
                    break
        request = events[-1]
        assert (request.tool_name, request.kind, request.summary) == ("Bash", "execute", "make test")
        await agent.answer_permission(request.request_id, allow)
        end = await until_result(agent, events)
        texts = [e.text for e in events if isinstance(e, AssistantText) and not e.partial]
        if allow:
            assert [e.name for e in events if isinstance(e, ToolUse)] == ["Bash"]
            assert [e.text for e in events if isinstance(e, ToolResult)] == ["make test"]
            assert texts == ["ran make test"] and end.num_requests == 2
        else:
            assert texts == ["denied: Denied by the Aegis approval policy."]
        await agent.close(grace=1)


@pytest.mark.trio
async def test_unsupported_control_request_is_answered(tmp_path):
    driver = ClaudeDriver()
    s = spec(tmp_path)
    async with trio.open_nursery() as nursery:
        agent = await driver.start(s, driver.build_launch(s), nursery)
        await agent.prompt("HOOK")
        events: list = []
        await until_result(agent, events)
        assert any(isinstance(e, Unknown) and "hook_callback" in e.reason for e in events)
        assert [e.text for e in events if isinstance(e, AssistantText) and not e.partial] == ["hook reply: error"]
        await agent.close(grace=1)


@pytest.mark.trio
async def test_death_mid_turn_is_an_agent_error_with_stderr(tmp_path):
    driver = ClaudeDriver()
    s = spec(tmp_path)
    async with trio.open_nursery() as nursery:
        agent = await driver.start(s, driver.build_launch(s), nursery)
        await agent.prompt("DIE")
        events: list = []
        end = await until_result(agent, events)
        assert isinstance(end, AgentError)
        assert end.exit_code == 3 and "during a turn" in end.message and "exit code 3" in end.message
        assert "fatal: the fake claude fell over" in end.stderr_tail
        assert [e async for e in agent.events()] == []  # the stream ended
        await agent.prompt("anyone?")  # writing to a dead agent does not raise
        assert not agent.turn_running
        await agent.close(grace=1)


@pytest.mark.trio
async def test_missing_binary_fails_at_once(tmp_path):
    driver = ClaudeDriver()
    s = spec(tmp_path, command=(str(tmp_path / "no-such-claude"),))
    async with trio.open_nursery() as nursery:
        with pytest.raises(SpawnFailed, match="no-such-claude"):
            await driver.start(s, driver.build_launch(s), nursery)


@pytest.mark.trio
async def test_the_mcp_url_goes_in_a_private_file_never_in_argv(tmp_path):
    import hashlib
    import stat

    url = "http://127.0.0.1:9/mcp/driver-level-secret-token"
    driver = ClaudeDriver()
    s = spec(tmp_path)
    launch = driver.build_launch(s).with_mcp(McpEndpoint(url=url))
    assert "--mcp-config" not in launch.argv
    async with trio.open_nursery() as nursery:
        agent = await driver.start(s, launch, nursery)
        # the kernel fills /proc/<pid>/cmdline a moment after exec has closed the parent's CLOEXEC pipe
        with trio.fail_after(10):
            while not (cmdline := Path(f"/proc/{agent.pid}/cmdline").read_bytes()):
                await trio.sleep(0.01)
        assert b"driver-level-secret-token" not in cmdline and b"--mcp-config" in cmdline
        config = agent.mcp_config
        assert config.parent == tmp_path / "private" / "mcp"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600 and stat.S_IMODE(config.parent.stat().st_mode) == 0o700
        await agent.prompt("MCP")
        events: list = []
        await until_result(agent, events)
        texts = [e.text for e in events if isinstance(e, AssistantText) and not e.partial]
        assert texts == [f"mcp aegis sha256={hashlib.sha256(url.encode()).hexdigest()} mode=0o600"]
        await agent.close(grace=1)
    assert not config.exists()
    # a CLI that cannot be started leaves no file behind either
    s = spec(tmp_path, command=(str(tmp_path / "no-such-claude"),))
    async with trio.open_nursery() as nursery:
        with pytest.raises(SpawnFailed):
            await driver.start(s, driver.build_launch(s).with_mcp(McpEndpoint(url=url)), nursery)
    assert list((tmp_path / "private" / "mcp").iterdir()) == []


CONFIG = """\
default_agent: coder
agents:
  coder:
    provider: claude-code
    permission: {permission}
    command: [{python}, {fake}]
"""


@pytest.mark.trio
async def test_through_the_kernel(write_config, make_kernel):
    write_config(CONFIG.format(permission="full", python=sys.executable, fake=FAKE))
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(prompt="hello kernel")
        await session.wait_for(lambda s: s.metrics.turns == 1, timeout=15)
        assert session.state == "ready"
        assert session.final_text.endswith("hello kernel")
        assert session.driver_session_id
        assert session.metrics.total.true_input == 121
        await kernel.sessions.close(session.handle)


@pytest.mark.trio
async def test_kernel_brokers_a_permission_to_input_required(write_config, make_kernel):
    write_config(CONFIG.format(permission="write", python=sys.executable, fake=FAKE))
    async with make_kernel() as kernel:
        session = await kernel.sessions.spawn(prompt="TOOL rm -rf build")
        await session.wait_for(lambda s: s.state == "input-required", timeout=15)
        assert session.pending_permission.summary == "rm -rf build"
        await session.answer_permission(True)
        await session.wait_for(lambda s: s.metrics.turns == 1, timeout=15)
        assert session.final_text == "ran rm -rf build"
        await kernel.sessions.close(session.handle)
