"""A shared terminal between a real CLI and a subscriber: a real ``claude`` on the fake model runs
``pytest -q`` through ``aegis_term_run`` (the real MCP plane); a subscribed agent (the scripted agent) is
woken with ``$ pytest -q · run by agent:<claude>`` / ``exit 0 · …s`` and the tail ``1 passed``."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

import real_cli_kit as kit
from aegis_kernel import Caller
from aegis_kernel import events as ev

pytestmark = [pytest.mark.real_cli, pytest.mark.trio]


@pytest.fixture
def project(fake_model, cli_root, write_config, aegis_project, monkeypatch):
    claude = kit.require_cli("claude")
    pytest.importorskip("aegis_scripted", reason="the scripted agent (aegis-scripted) is not installed")
    config = {
        "default_agent": "builder",
        "agents": {
            "builder": {"provider": "claude-code", "permission": "full", "command": [claude],
                        "env": kit.claude_env(fake_model, cli_root)},
            "watcher": {"provider": "scripted"},
        },
    }
    write_config(json.dumps(config, indent=1))
    (aegis_project / "test_ok.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    # the terminal's shell finds this interpreter's pytest
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("SHELL", "/bin/bash")


def term_wakeups(session):
    return [e for e in session.history if isinstance(e, ev.EnvelopeReceived) and e.sender == "term:build"]


async def test_a_real_claude_runs_pytest_in_a_shared_terminal_and_the_subscriber_is_told(
        project, fake_model, make_kernel):
    async with make_kernel() as kernel:
        assert kernel.mcp_base_url, "the MCP plane (aegis-mcp) is not installed"
        user = Caller()
        await kernel.operations.call(kernel, "aegis_term_spawn", {"name": "build"}, user)
        watcher = await kernel.sessions.spawn("watcher", prompt="watch build")
        await kit.wait_turns(watcher, 1)
        await kernel.operations.call(kernel, "aegis_term_subscribe", {"name": "build", "from_handle": watcher.handle},
                                     user)

        builder = await kernel.sessions.spawn("builder", prompt="CALL_TOOL aegis_term_run " + json.dumps(
            {"name": "build", "cmd": "pytest -q", "timeout_s": 60}))
        await kit.wait_turns(builder, 1)
        assert builder.final_text.startswith("FAKE_DONE tool_result="), builder.final_text
        assert re.search(r'\\?"exit\\?": ?0', builder.final_text), builder.final_text

        await kit.wait_turns(watcher, 2)
        [wakeup] = term_wakeups(watcher)
        head, _, tail = wakeup.body.partition("\n──\n")
        cmd_line, outcome = head.splitlines()
        assert cmd_line == f"$ pytest -q · run by agent:{builder.handle}"
        assert re.fullmatch(r"exit 0 · \d+\.\d\ds", outcome), outcome
        assert re.search(r"1 passed", tail), tail
        assert term_wakeups(builder) == []  # the runner is not woken by its own command
