"""Issue 12 finding 8: what an ACP agent asks of the client (file reads and writes) goes through the
kernel's approval broker with the agent's ``permission``, ``allow`` and ``deny`` — real scripted agents
in a real kernel."""

from __future__ import annotations

import pytest

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted) is not installed")

CONFIG = """\
default_agent: reader
plugins:
  disabled: [mcp]
agents:
  reader:
    provider: scripted
    permission: read
  writer:
    provider: scripted
    permission: write
  fenced:
    provider: scripted
    permission: write
    deny: ["fs/write_text_file:secrets/*"]
"""


@pytest.fixture
def project(write_config, aegis_project):
    write_config(CONFIG)
    (aegis_project / "notes.txt").write_text("original")
    (aegis_project / "secrets").mkdir()
    (aegis_project / "secrets" / "key").write_text("k")
    return aegis_project


@pytest.mark.trio
async def test_a_read_agent_reads_but_its_write_waits_for_a_person_and_a_refusal_leaves_the_file(project, kernel):
    session = await kernel.sessions.spawn("reader", prompt="@read notes.txt\n@write notes.txt clobbered")
    await session.wait_for(lambda s: s.state == "input-required")
    req = session.pending_permission
    assert (req.tool_name, req.kind, req.summary) == ("fs/write_text_file", "edit", "notes.txt")
    assert (project / "notes.txt").read_text() == "original"
    await session.answer_permission(False)
    await session.wait_idle()
    assert "read notes.txt → original" in session.final_text
    assert "write notes.txt failed" in session.final_text and "permission denied" in session.final_text
    assert (project / "notes.txt").read_text() == "original"


@pytest.mark.trio
async def test_a_write_agent_writes_without_asking(project, kernel):
    session = await kernel.sessions.spawn("writer", prompt="@write notes.txt rewritten")
    await session.wait_idle()
    assert session.state == "ready" and "wrote notes.txt" in session.final_text
    assert (project / "notes.txt").read_text() == "rewritten"
    asked = [e for e in session.history if type(e).__name__ in ("PermissionRequest", "ApprovalAnswered")]
    assert [(type(e).__name__, e.tool_name) for e in asked] == [
        ("PermissionRequest", "fs/write_text_file"), ("ApprovalAnswered", "fs/write_text_file")]
    assert asked[1].allow  # the policy's answer is in the transcript, as a person's is


@pytest.mark.trio
async def test_deny_patterns_refuse_without_asking(project, kernel):
    session = await kernel.sessions.spawn("fenced", prompt="@write secrets/key stolen\n@write notes.txt fine")
    await session.wait_idle()
    assert session.state == "ready"
    assert "write secrets/key failed" in session.final_text and "wrote notes.txt" in session.final_text
    assert (project / "secrets" / "key").read_text() == "k"
    assert (project / "notes.txt").read_text() == "fine"
