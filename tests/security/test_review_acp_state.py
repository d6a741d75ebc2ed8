"""Review of issue 12 findings 1 and 8: an ACP agent's ``fs/read_text_file`` was confined to its cwd
— the project — which holds ``.aegis/state``: any agent (a ``permission: read`` one without asking)
could read another agent's MCP config from ``private/mcp/`` and act as that agent, or read every
transcript and inbox; a writing agent could rewrite ledgers or plant links there. Aegis's state is
now out of bounds for the client's fs methods, whatever the permission (directly or through a link)."""

from __future__ import annotations

import pytest

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted) is not installed")

CONFIG = """\
default_agent: full
plugins:
  disabled: [mcp]
agents:
  full:
    provider: scripted
    permission: full
"""


@pytest.fixture
def project(write_config, aegis_project):
    write_config(CONFIG)
    (aegis_project / "notes.txt").write_text("project file")
    return aegis_project


@pytest.mark.trio
async def test_no_agent_reads_or_writes_aegis_state_through_the_client(project, kernel):
    state = kernel.state.root
    secret = state / "private" / "mcp" / "claude-0123456789abcdef.json"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text('{"mcpServers": {"aegis": {"url": "http://127.0.0.1:1/mcp/PEER-TOKEN-XYZ"}}}')
    (project / "innocent").symlink_to(secret)
    prompt = "\n".join([
        f"@read {secret}",
        "@read innocent",
        "@read .aegis/state/sessions.json",
        "@write .aegis/state/private/mcp/planted.json {}",
        "@read notes.txt",
        "@write notes2.txt fine",
    ])
    session = await kernel.sessions.spawn("full", prompt=prompt)
    await session.wait_idle()
    text = session.final_text
    assert "PEER-TOKEN-XYZ" not in text and "mcpServers" not in text
    assert text.count("failed") == 4 and "Aegis's private state" in text, text
    assert not (state / "private" / "mcp" / "planted.json").exists()
    # the project itself is served as before
    assert "read notes.txt → project file" in text and (project / "notes2.txt").read_text() == "fine"
