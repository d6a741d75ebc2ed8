"""The real ``claude`` (Claude Code 2.1.197, stream-json) through a kernel with the real MCP plane."""

from __future__ import annotations

import pytest

import real_cli_kit as kit

pytestmark = [pytest.mark.real_cli, pytest.mark.trio]


@pytest.fixture
def project(fake_model, cli_root, write_config):
    binary = kit.require_cli("claude")
    kit.write_project_config(write_config, "claude-code", binary, kit.claude_env(fake_model, cli_root))


async def test_plain_turn_and_metrics(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        # Anthropic reports all four counts: true input 111 + 7 + 3 = 121, 7 of it cache reads.
        await kit.scenario_plain_turn(kernel, fake_model, "anthropic", {
            "input": 121, "output": 22, "cache_read": 7, "cached_pct": 6, "tool_calls": 0, "turns": 1,
            "context_used": 121})


async def test_list_sessions_and_handoff_through_the_mcp_plane(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        assert kernel.mcp_base_url, "the MCP plane (aegis-mcp) is not installed"
        asked = await kit.scenario_handoff(kernel, fake_model, "anthropic", "mcp__aegis__")
        # permission write → --permission-prompt-tool stdio: Claude asks can_use_tool for MCP tools
        assert [r.tool_name for r in asked] == ["mcp__aegis__aegis_list_sessions", "mcp__aegis__aegis_handoff"]


async def test_a_queue_of_real_workers_calls_back_with_their_final_messages(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        await kit.scenario_queue_workers(kernel, fake_model, "anthropic")


async def test_interrupt_mid_stream_then_next_turn(project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        await kit.scenario_interrupt(kernel, fake_model)


async def test_resume_after_kill_keeps_the_conversation(project, fake_model, make_kernel, cli_root):
    async with make_kernel() as kernel:
        # Claude Code appends to its transcript a moment after the result frame: a kill -9 within those
        # few ms loses the turn (`--resume` then says "No conversation found"). Kill once it is written.
        await kit.scenario_resume_after_kill(kernel, fake_model, kit.claude_persisted(cli_root))
