"""Review of issue 12 finding 1: the private folder that holds secret files (an agent's MCP config)
is only ever a real folder of ours. A symlink planted at ``.aegis/state/private[/mcp]`` (by anyone who
could write there before, e.g. an agent running commands or a pre-existing world-writable project)
must not send the 0600 secret file into a folder its planter controls — where it could be swapped
for their own config before the CLI reads it — nor chmod the planter's folder."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from aegis_kernel import private_dir


def planted(tmp_path, where: str):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o755)
    link = state / where
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)
    return state, target


@pytest.mark.parametrize("where", ["private", "private/mcp"])
def test_a_symlink_in_the_private_path_is_refused_and_its_target_untouched(tmp_path, where):
    state, target = planted(tmp_path, where)
    with pytest.raises(OSError, match="symlink"):
        private_dir(state, "mcp")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755 and list(target.iterdir()) == []


def test_the_claude_mcp_config_never_lands_behind_a_planted_symlink(tmp_path):
    pytest.importorskip("aegis_claude")
    from aegis_claude.agent import write_mcp_config
    from aegis_kernel.drivers import McpEndpoint

    state, target = planted(tmp_path, "private/mcp")
    spec = SimpleNamespace(state_dir=state)  # all write_mcp_config reads of the spec
    with pytest.raises(OSError):
        write_mcp_config(spec, McpEndpoint(name="aegis", url="http://127.0.0.1:1/mcp/SECRET"))
    assert list(target.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a folder to another uid (nobody)")
def test_a_private_folder_owned_by_another_user_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    theirs = state / "private"
    theirs.mkdir(mode=0o777)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(OSError, match="uid 65534"):
        private_dir(state, "mcp")
    assert not (theirs / "mcp").exists()


def test_a_real_private_folder_is_made_and_narrowed_as_before(tmp_path):
    state = tmp_path / "state"
    (state / "private").mkdir(parents=True, mode=0o755)
    path = private_dir(state, "mcp")
    assert path == state / "private" / "mcp" and path.is_dir()
    for level in (state / "private", path):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700


@pytest.mark.trio
async def test_a_spawn_behind_a_planted_link_fails_naming_it_and_the_kernel_lives_on(write_config, aegis_project,
                                                                                    make_kernel, tmp_path):
    pytest.importorskip("aegis_claude")
    pytest.importorskip("aegis_mcp")
    fake = Path(__file__).resolve().parent.parent / "claude" / "fake_claude.py"
    write_config(f"default_agent: claude\nagents:\n  claude:\n    provider: claude-code\n"
                 f"    command: [{sys.executable}, {fake}]\n  helper:\n    provider: scripted\n")
    target = tmp_path / "elsewhere"
    target.mkdir()
    async with make_kernel() as kernel:
        link = kernel.state.root / "private"
        link.symlink_to(target, target_is_directory=True)
        try:
            session = await kernel.sessions.spawn("claude", prompt="MCP")
            await session.wait_for(lambda s: s.state == "error", timeout=30)
            problem = session.error
        except Exception as exc:  # refused at spawn: as good, if it names the link
            problem = str(exc)
        assert "refusing the private folder" in problem and "symlink" in problem, problem
        assert list(target.iterdir()) == []
        helper = await kernel.sessions.spawn("helper", prompt="@reply alive")
        await helper.wait_for(lambda s: s.metrics.turns == 1, timeout=30)
