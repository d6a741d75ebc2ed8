"""The real ``opencode`` (OpenCode 1.18, ``opencode acp``) through a kernel with the real MCP plane."""

from __future__ import annotations

import pytest

import real_cli_kit as kit

pytestmark = [pytest.mark.real_cli, pytest.mark.trio]


@pytest.fixture
def project(fake_model, cli_root, write_config):
    binary = kit.require_cli("opencode")
    kit.write_project_config(write_config, "opencode", binary, kit.opencode_env(fake_model, cli_root))


async def test_plain_turn_and_metrics(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        # OpenCode's inputTokens excludes the cache (prompt 111 − cached 7 = 104): true input 111, 7 cached;
        # the OpenAI format has no cache-creation count. Context from usage_update against the model limit.
        await kit.scenario_plain_turn(kernel, fake_model, "openai", {
            "input": 111, "output": 22, "cache_read": 7, "cached_pct": 6, "tool_calls": 0, "turns": 1,
            "context_used": 111, "context_size": kit.OPENCODE_CONTEXT, "cost_usd": 0.0})


async def test_list_sessions_and_handoff_through_the_mcp_plane(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        assert kernel.mcp_base_url, "the MCP plane (aegis-mcp) is not installed"
        asked = await kit.scenario_handoff(kernel, fake_model, "openai", "aegis_")
        assert [r.tool_name for r in asked] == []  # OpenCode runs MCP tools without asking


async def test_a_queue_of_real_workers_calls_back_with_their_final_messages(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        await kit.scenario_queue_workers(kernel, fake_model, "openai")


async def test_interrupt_mid_stream_then_next_turn(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        await kit.scenario_interrupt(kernel, fake_model)


async def test_resume_after_kill_keeps_the_conversation(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        await kit.scenario_resume_after_kill(kernel, fake_model)
