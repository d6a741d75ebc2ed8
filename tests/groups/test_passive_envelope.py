"""The kernel seam groups use for cancel notes: a passive envelope never starts a turn by itself; it
reaches the agent with the next turn something else starts (and a restart keeps it)."""

from __future__ import annotations

import pytest
import trio.testing

from aegis_kernel import Envelope
from aegis_kernel.testing import DriverPlugin, FakeDriver


@pytest.fixture
def fake(write_config, register_plugin):
    write_config("default_agent: a\nplugins:\n  disabled: [mcp]\nagents:\n  a:\n    provider: fake\n")
    return register_plugin(DriverPlugin(FakeDriver()))


@pytest.mark.trio
async def test_a_passive_envelope_waits_for_the_next_turn_and_rides_with_it(fake, kernel):
    session = await kernel.sessions.spawn("a")
    await session.wait_for(lambda s: s.state == "ready")
    receipt = kernel.deliver(session.handle, Envelope.new("group:g/cancel:1", "superseded", passive=True))
    assert receipt.state == "queued"
    await trio.testing.wait_all_tasks_blocked()
    assert session.state == "ready" and session.pending_count == 1 and not session.wants_turn
    await session.wait_idle()  # idle: nothing will start a turn
    kernel.deliver(session.handle, Envelope.new("user", "next question"))
    await session.wait_idle()
    process = session._proc
    assert len(process.prompts) == 1 and process.prompts[0].startswith("✉ from group:g/cancel:1")
    assert process.prompts[0].endswith("next question") and session.pending_count == 0
