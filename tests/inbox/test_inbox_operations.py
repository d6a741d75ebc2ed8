"""The core agent tools, called as an agent would (through the operation registry), on FakeDriver sessions."""

from __future__ import annotations

import re

import pytest

from aegis_kernel.operations import Caller, OperationError
from aegis_kernel.testing import DriverPlugin, FakeDriver

CONFIG = """\
default_agent: fake
agents:
  fake:
    provider: fake
    description: a test agent
"""


@pytest.fixture
def fake(write_config, register_plugin):
    write_config(CONFIG)
    return register_plugin(DriverPlugin(FakeDriver())).drivers[0]


async def call(kernel, name, caller=None, **args):
    return await kernel.operations.call(kernel, name, args, caller or Caller())


@pytest.mark.trio
async def test_meta_is_short_and_lists_installed_tools(fake, kernel):
    text = await call(kernel, "aegis_meta", Caller("me-1", via="mcp"))
    assert len(text) < 2000
    assert "you are 'me-1'" in text
    for tool in ("aegis_handoff", "aegis_spawn", "aegis_list_sessions", "aegis_read_peer"):
        assert f"- {tool}(" in text  # the core tools are described
    for op in kernel.operations.visible_to(Caller("me-1", via="mcp")):  # every tool the agent may call is
        family, _, member = op.name.removeprefix("aegis_").partition("_")  # at least named, however many
        folded = re.search(rf"aegis_{family}_{{[^}}]*\b{member}\b", text)  # (families folded: aegis_x_{a, b})
        assert op.name in text or (member and folded), op.name
    assert "aegis_stop" not in text  # …and none it may not


@pytest.mark.trio
async def test_handoff_refusals_name_the_way_out(fake, kernel):
    a = await kernel.sessions.spawn(handle="alpha")
    with pytest.raises(OperationError, match="cannot hand off to yourself"):
        await call(kernel, "aegis_handoff", Caller("alpha"), target_handle="alpha", context="hi")
    with pytest.raises(OperationError, match=r"no session 'ghost' \(use aegis_list_sessions\)"):
        await call(kernel, "aegis_handoff", Caller("alpha"), target_handle="ghost", context="hi")
    await a.wait_for(lambda s: s.state == "ready")
    result = await call(kernel, "aegis_handoff", Caller("beta"), target_handle="alpha", context="hi")
    assert result["message"] == "landed at alpha"


@pytest.mark.trio
async def test_spawn_list_read_and_close_by_spawner_only(fake, kernel):
    spawned = await call(kernel, "aegis_spawn", Caller("boss"), agent="fake", prompt="do the thing")
    handle = spawned["handle"]
    session = kernel.sessions.get(handle)
    await session.wait_for(lambda s: s.metrics.turns == 1)
    listed = {s["handle"]: s for s in await call(kernel, "aegis_list_sessions", Caller("boss"))}
    assert listed[handle]["spawned_by"] == "boss" and listed[handle]["state"] == "ready"
    peer = await call(kernel, "aegis_read_peer", Caller("boss"), handle=handle, turns=5)
    assert "fake reply to: do the thing" in peer["text"]
    assert "do the thing" in peer["text"]
    with pytest.raises(OperationError, match="spawned by 'boss'; only its spawner or the user"):
        await call(kernel, "aegis_close", Caller("intruder"), handle=handle)
    assert (await call(kernel, "aegis_close", Caller("boss"), handle=handle))["closed"]
    assert kernel.sessions.get(handle) is None


@pytest.mark.trio
async def test_spawn_unknown_agent_is_a_clear_refusal(fake, kernel):
    with pytest.raises(OperationError, match="unknown agent 'nope' \\(configured: fake\\)"):
        await call(kernel, "aegis_spawn", Caller("boss"), agent="nope", prompt="x")


@pytest.mark.trio
async def test_list_agents_and_headless_view_file(fake, kernel):
    agents = await call(kernel, "aegis_list_agents")
    assert agents == [{"name": "fake", "provider": "fake", "model": None, "default": True,
                       "description": "a test agent"}]
    assert (await call(kernel, "aegis_view_file", path="README.md"))["status"] == "no_tui"
