"""Review of issue 12 finding 12 beyond the MCP plane: text that is not Unicode (a lone surrogate —
valid in JSON as ``"\\ud800"``, and what Python makes of undecodable bytes in argv) reached
``Ledger.append``, which raised ``UnicodeEncodeError``: an agent whose output held one, or a message
sent with one, failed with an internal error instead of being written (with U+FFFD in its place)."""

from __future__ import annotations

import pytest

from aegis_kernel.delivery import Envelope
from aegis_kernel.testing import DriverPlugin, FakeDriver


@pytest.fixture
def setup(write_config, register_plugin):
    write_config("default_agent: fake\nagents:\n  fake:\n    provider: fake\n")
    register_plugin(DriverPlugin(FakeDriver(lambda text: "half \ud800 a pair")))


@pytest.mark.trio
async def test_agent_output_with_a_lone_surrogate_is_kept_with_a_replacement_character(setup, kernel):
    session = await kernel.sessions.spawn(handle="odd", prompt="hi")
    await session.wait_for(lambda s: s.metrics.turns == 1 or s.state == "error", timeout=30)
    assert session.state == "ready", session.error
    kernel.deliver(session.handle, Envelope.new("user", "and \udcff back"))  # as argv bytes decode
    await session.wait_for(lambda s: s.metrics.turns == 2 or s.state == "error", timeout=30)
    assert session.state == "ready", session.error
    text = (kernel.state.root / "sessions").glob("*odd.jsonl")
    [path] = list(text)
    written = path.read_text(encoding="utf-8")
    assert "half \ufffd a pair" in written and "and \ufffd back" in written
