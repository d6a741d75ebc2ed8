"""A canvas between two real CLIs on the fake model: a real ``claude`` writes a section through the
Aegis MCP plane, a real ``opencode`` subscriber is woken with the diff envelope (and its model sees it)."""

from __future__ import annotations

import json

import pytest

import real_cli_kit as kit
from aegis_kernel import Caller
from aegis_kernel import events as ev

pytestmark = [pytest.mark.real_cli, pytest.mark.trio]


@pytest.fixture
def project(fake_model, cli_root, write_config):
    claude = kit.require_cli("claude")
    opencode = kit.require_cli("opencode")
    config = {
        "default_agent": "writer",
        "agents": {
            "writer": {"provider": "claude-code", "permission": "write", "command": [claude],
                       "env": kit.claude_env(fake_model, cli_root)},
            "reader": {"provider": "opencode", "permission": "write", "command": [opencode],
                       "env": kit.opencode_env(fake_model, cli_root)},
        },
    }
    write_config(json.dumps(config, indent=1))


def canvas_wakeups(session):
    return [e for e in session.history if isinstance(e, ev.EnvelopeReceived) and e.sender == "canvas:report-q3"]


async def test_a_real_claude_writes_a_section_and_a_real_opencode_subscriber_gets_the_diff(
        project, fake_model, make_kernel, aegis_project):
    async with make_kernel() as kernel:
        assert kernel.mcp_base_url, "the MCP plane (aegis-mcp) is not installed"
        await kernel.operations.call(kernel, "aegis_canvas_open", {"name": "report-q3", "file": "vault/reports/q3.md"},
                                     Caller())
        reader = await kernel.sessions.spawn(
            "reader", prompt="CALL_TOOL aegis_canvas_subscribe " + json.dumps({"name": "report-q3"}))
        await kit.wait_turns(reader, 1)
        assert reader.final_text.startswith("FAKE_DONE tool_result="), reader.final_text
        assert reader.handle in json.dumps(await kernel.operations.call(kernel, "aegis_canvas_list", {}, Caller()))

        content = "Q3 numbers came in stronger than projected\nrevenue +12%\nchurn -3%"
        mark = len(fake_model.requests)
        writer = await kernel.sessions.spawn("writer", prompt="CALL_TOOL aegis_canvas_write_section " + json.dumps(
            {"name": "report-q3", "section": "data", "content": content}))
        await kit.wait_turns(writer, 1)
        assert writer.final_text.startswith("FAKE_DONE tool_result="), writer.final_text
        assert '"version": 1' in writer.final_text or '"version":1' in writer.final_text, writer.final_text
        assert (aegis_project / "vault/reports/q3.md").read_text() == f"## data\n{content}\n"

        await kit.wait_turns(reader, 2)
        [wakeup] = canvas_wakeups(reader)
        summary, preview = wakeup.body.split("\n──\n", 1)
        assert summary == f'section "data" · written by agent:{writer.handle} (+3 / -0 lines)'
        assert preview.startswith("Q3 numbers came in stronger than projected")
        seen = [r for r in kit.requests_since(fake_model, mark, "openai") if "written by agent:" in (r.last_user_text or "")]
        assert seen, "the subscriber's model never saw the canvas envelope"
        assert canvas_wakeups(writer) == []
