"""Issue 12 finding 15, the small ones: ``aegis … | head`` ends quietly, and the serve banner does not
count a session restored in ``error`` as restored. (The claude ``result`` frame part is in
tests/claude/test_claude_codec.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import trio



def test_a_reader_that_goes_away_ends_any_verb_quietly(tmp_path):
    """``aegis plugins list | head -1``: the pipe breaks under the verb; no traceback, status 141."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already gone: the first write breaks the pipe
    try:
        done = subprocess.run([sys.executable, "-m", "aegis_kernel.cli", "plugins", "list"], cwd=tmp_path,
                              stdout=write_end, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    assert done.stderr.decode() == ""
    assert done.returncode == 141


pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted) is not installed")

BANNER_CONFIG = """\
default_agent: helper
plugins:
  disabled: [mcp]
agents:
  helper:
    provider: scripted
  broken:
    provider: acp
    command: [/nonexistent/aegis-test-agent]
"""


@pytest.mark.trio
async def test_the_banner_counts_a_session_that_failed_to_come_back_as_not_restored(write_config, aegis_project):
    from aegis_kernel.kernel import build_kernel
    from aegis_kernel.serve import serve

    write_config(BANNER_CONFIG)
    state = aegis_project / ".aegis" / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "sessions.json").write_text(json.dumps({"v": 1, "ended": [], "sessions": [
        {"handle": "fine", "agent": "helper"}, {"handle": "lost", "agent": "broken"}]}))
    kernel = build_kernel(aegis_project)
    said: list[str] = []
    async with trio.open_nursery() as nursery:
        k = await nursery.start(lambda task_status: serve(kernel, announce=said.append, task_status=task_status))
        assert k.sessions.get("lost").state == "error"
        k.stop_handler()
    banner = said[0]
    assert "1 session(s) restored (1 could not be: lost)" in banner


@pytest.fixture
def observed_fake(write_config, register_plugin):
    from aegis_kernel import hookimpl
    from aegis_kernel.testing import DriverPlugin, FakeDriver

    fake = FakeDriver()
    fake.finished = []

    class Observer:
        @hookimpl
        def aegis_turn_finished(self, session, result, final_text):
            fake.finished.append(session.handle)

    write_config("default_agent: fake\nplugins:\n  disabled: [mcp]\nagents:\n  fake:\n    provider: fake\n")
    register_plugin(DriverPlugin(fake))
    register_plugin(Observer())
    return fake


@pytest.mark.trio
async def test_a_turn_end_while_no_turn_runs_is_not_another_turn(observed_fake, kernel):
    """A stray or duplicated result frame (the claude case of finding 15) after a finished turn: noted in
    the transcript, never counted as a turn, and observers hear of one turn only."""
    from aegis_kernel.events import TurnResult, Unknown

    session = await kernel.sessions.spawn(handle="once", prompt="hello")
    await session.wait_for(lambda s: s.metrics.turns == 1 and s.state == "ready")
    await observed_fake.processes[0]._send.send(TurnResult(stop_reason="end_turn"))
    await session.wait_for(lambda s: isinstance(s.history[-1], Unknown))
    assert "no turn was running" in session.history[-1].reason
    assert session.metrics.turns == 1 and observed_fake.finished == ["once"]
