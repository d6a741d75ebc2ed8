"""The real ``gemini`` (Gemini CLI 0.61, ``gemini --acp``) through a kernel with the real MCP plane."""

from __future__ import annotations

import pytest
import trio

import real_cli_kit as kit

pytestmark = [pytest.mark.real_cli, pytest.mark.trio]


@pytest.fixture
def project(fake_model, cli_root, write_config):
    binary = kit.require_cli("gemini")
    kit.write_project_config(write_config, "gemini", binary, kit.gemini_env(fake_model, cli_root))


async def test_plain_turn_and_metrics(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        # Gemini reports input/output only (_meta.quota.token_count); its input is promptTokenCount,
        # the cache counted inside and not broken out.
        await kit.scenario_plain_turn(kernel, fake_model, "gemini",
                                      {"input": 111, "output": 22, "cache_read": 0, "tool_calls": 0, "turns": 1})


async def test_list_sessions_and_handoff_through_the_mcp_plane(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        assert kernel.mcp_base_url, "the MCP plane (aegis-mcp) is not installed"
        asked = await kit.scenario_handoff(kernel, fake_model, "gemini", "mcp_aegis_")
        # Gemini asks session/request_permission for every MCP tool, titled "<tool> (<server> MCP Server)"
        assert [r.tool_name for r in asked] == ["aegis_list_sessions (aegis MCP Server)",
                                                "aegis_handoff (aegis MCP Server)"]


async def test_a_queue_of_real_workers_calls_back_with_their_final_messages(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        await kit.scenario_queue_workers(kernel, fake_model, "gemini")


async def test_interrupt_mid_stream_then_next_turn(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        await kit.scenario_interrupt(kernel, fake_model)


async def test_resume_after_kill_keeps_the_conversation(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        await kit.scenario_resume_after_kill(kernel, fake_model)


async def test_close_kills_the_relaunched_child_too(fake_model, cli_root, tmp_path):
    """Without GEMINI_CLI_NO_RELAUNCH, gemini re-spawns itself (node --max-old-space-size=… gemini);
    the driver runs it in its own process group and close leaves nothing of that group behind."""
    from aegis_gemini.driver import GeminiDriver
    from aegis_kernel.drivers import SpawnSpec
    from aegis_kernel.profiles import AgentProfile

    binary = kit.require_cli("gemini")
    env = {**kit.gemini_env(fake_model, cli_root), "GEMINI_CLI_NO_RELAUNCH": ""}  # let it relaunch
    profile = AgentProfile(provider="gemini", command=(binary,), env=env)
    spec = SpawnSpec(handle="h", profile_name="g", profile=profile, cwd=tmp_path, state_dir=tmp_path)
    driver = GeminiDriver()

    async with trio.open_nursery() as nursery:
        agent = await driver.start(spec, driver.build_launch(spec), nursery)
        members = kit.group_members(agent.pid)
        assert len(members) >= 2, members  # the launcher and the relaunched child
        await agent.close()
    assert kit.group_members(agent.pid) == []
