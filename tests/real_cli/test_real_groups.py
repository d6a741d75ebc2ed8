"""A group of real CLIs on the fake model: real ``claude``, ``gemini`` and ``opencode`` members answer
one broadcast, and ``join_by_handle`` has all three whole final messages of that turn."""

from __future__ import annotations

import json

import pytest

import real_cli_kit as kit
from aegis_kernel import Caller

pytestmark = [pytest.mark.real_cli, pytest.mark.trio]


@pytest.fixture
def project(fake_model, cli_root, write_config):
    binaries = {name: kit.require_cli(name) for name in kit.CLIS}
    env = {"claude": kit.claude_env, "gemini": kit.gemini_env, "opencode": kit.opencode_env}
    providers = {"claude": "claude-code", "gemini": "gemini", "opencode": "opencode"}
    config = {
        "default_agent": "claude",
        "agents": {name: {"provider": providers[name], "permission": "write", "command": [binaries[name]],
                          "env": env[name](fake_model, cli_root)} for name in kit.CLIS},
        "groups": {"presets": {"mixed": {"profiles": list(kit.CLIS)}}},
    }
    write_config(json.dumps(config, indent=1))


async def test_a_group_of_real_claude_gemini_and_opencode_answers_one_broadcast(project, fake_model, make_kernel):
    user = Caller()
    async with make_kernel() as kernel:
        ops = kernel.operations
        out = await ops.call(kernel, "aegis_group_spawn_mixed", {"name": "mixed", "preset": "mixed"}, user)
        members = out["members"]
        assert [kernel.sessions.get(h).provider for h in members] == ["claude-code", "gemini", "opencode"]
        for handle in members:
            session = kernel.sessions.get(handle)
            await session.wait_for(lambda s: s.state in kit.SETTLED, kit.TURN_TIMEOUT)
            assert session.state == "ready", f"{handle} is {session.state}: {session.error}"
        sent = await ops.call(kernel, "aegis_group_broadcast",
                              {"name": "mixed", "objective": "name three primary colours",
                               "output_format": "one line"}, user)
        result = await ops.call(kernel, "aegis_group_wait_all",
                                {"name": "mixed", "timeout": kit.TURN_TIMEOUT * 2, "reducer": "join_by_handle"}, user)
        assert result["errors"] == {} and result["timeouts"] == [], result
        assert set(result["reduced"]) == set(members)
        for handle, text in result["reduced"].items():
            # the fake model answers the member's last user message: the broadcast envelope, whole
            assert text.startswith("FAKE_REPLY to:"), (handle, text)
            assert f"group:mixed/broadcast:{sent['broadcast_id']}" in text and "name three primary colours" in text
            assert result["replies"][handle]["usage"] is not None
